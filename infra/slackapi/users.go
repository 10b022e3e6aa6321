package slackapi

import (
	"context"
	"time"

	"github.com/slack-go/slack"
)

// User is the part of a Slack user tokken uses: who they are, where to
// reach them, and their time zone for rendering expiry times.
type User struct {
	ID          string
	Name        string
	RealName    string
	DisplayName string
	Email       string // needs the users:read.email scope
	TZ          string // IANA name, e.g. "Asia/Tokyo"
	TZLabel     string
	TZOffset    int // seconds east of UTC
	IsBot       bool
	Deleted     bool
	// TeamID is the user's own team. In a Slack Connect channel a user of
	// another organisation keeps theirs, and IsStranger is set for a user
	// whose team is not connected to the asking one.
	TeamID     string
	IsStranger bool
}

// Location is the user's time zone: the IANA zone when it can be loaded,
// else a fixed zone at TZOffset.
func (u User) Location() *time.Location {
	if u.TZ != "" {
		if loc, err := time.LoadLocation(u.TZ); err == nil {
			return loc
		}
	}
	return time.FixedZone(u.TZLabel, u.TZOffset)
}

func userFrom(s *slack.User) User {
	return User{
		ID: s.ID, Name: s.Name, RealName: s.RealName, DisplayName: s.Profile.DisplayName,
		Email: s.Profile.Email, TZ: s.TZ, TZLabel: s.TZLabel, TZOffset: s.TZOffset,
		IsBot: s.IsBot, Deleted: s.Deleted, TeamID: s.TeamID, IsStranger: s.IsStranger,
	}
}

// UserInfo looks up a user by id (users.info).
func (c *Client) UserInfo(ctx context.Context, userID string) (User, error) {
	var u User
	err := c.do(ctx, call{method: "users.info"}, func(ctx context.Context) error {
		s, err := c.api.GetUserInfoContext(ctx, userID)
		if err != nil {
			return err
		}
		u = userFrom(s)
		return nil
	})
	return u, err
}

// UserByEmail looks up a user by e-mail address (users.lookupByEmail);
// Slack answers users_not_found for an unknown address.
func (c *Client) UserByEmail(ctx context.Context, email string) (User, error) {
	var u User
	err := c.do(ctx, call{method: "users.lookupByEmail"}, func(ctx context.Context) error {
		s, err := c.api.GetUserByEmailContext(ctx, email)
		if err != nil {
			return err
		}
		u = userFrom(s)
		return nil
	})
	return u, err
}

// UserGroupMembers lists the user ids in a user group (usergroups.users.list),
// e.g. the approvers named by a policy as "@prod-approvers".
func (c *Client) UserGroupMembers(ctx context.Context, groupID string) ([]string, error) {
	var members []string
	err := c.do(ctx, call{method: "usergroups.users.list"}, func(ctx context.Context) error {
		var err error
		members, err = c.api.GetUserGroupMembersContext(ctx, groupID)
		return err
	})
	return members, err
}
