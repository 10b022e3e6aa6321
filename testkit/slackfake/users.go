package slackfake

import (
	"strings"
	"time"
	_ "time/tzdata" // users.info tz offsets must not depend on the machine's zoneinfo

	"github.com/slack-go/slack"
)

func (f *Fake) authTest(*request, *Call) reply {
	return okReply(map[string]any{
		"url": "https://" + TeamName + ".slack.com/", "team": TeamName, "user": "tokken",
		"team_id": TeamID, "user_id": BotUserID, "bot_id": BotID, "is_enterprise_install": false,
	})
}

func (f *Fake) openConversation(req *request, call *Call) reply {
	if ch := req.fields.Get("channel"); ch != "" {
		user, ok := f.userByDM[ch]
		if !ok {
			return fail("channel_not_found")
		}
		call.Channel, call.User = ch, user
		return okReply(map[string]any{"no_op": true, "already_open": true, "channel": f.dmWire(ch, user)})
	}
	users := strings.Split(req.fields.Get("users"), ",")
	switch {
	case len(users) == 0 || users[0] == "":
		return fail("users_list_not_supplied")
	case len(users) > 1:
		// Multi-person DMs are not modelled: tokken only opens 1:1 DMs.
		return fail("not_supported_by_fake")
	}
	user := users[0]
	u, ok := f.users[user]
	switch {
	case !ok || u.IsBot:
		return fail("user_not_found")
	case u.Deleted:
		return fail("user_disabled")
	}
	ch, existed := f.openDM(user)
	call.Channel, call.User = ch, user
	return okReply(map[string]any{"no_op": existed, "already_open": existed, "channel": f.dmWire(ch, user)})
}

func (f *Fake) dmWire(ch, user string) map[string]any {
	return map[string]any{"id": ch, "is_im": true, "user": user, "is_open": true, "created": f.now().Unix()}
}

// wireUser renders u the way users.info does.
func (f *Fake) wireUser(u User) slack.User {
	label, offset := u.TZ, 0
	if loc, err := time.LoadLocation(u.TZ); err == nil && u.TZ != "" {
		label, offset = f.now().In(loc).Zone()
	}
	return slack.User{
		ID: u.ID, TeamID: orDefault(u.TeamID, TeamID), Name: u.Name, RealName: u.RealName, Deleted: u.Deleted,
		TZ: u.TZ, TZLabel: label, TZOffset: offset, IsBot: u.IsBot, IsStranger: u.Stranger,
		Profile: slack.UserProfile{
			RealName: u.RealName, RealNameNormalized: u.RealName,
			DisplayName: u.Name, DisplayNameNormalized: u.Name, Email: u.Email,
		},
	}
}

func (f *Fake) userInfo(req *request, call *Call) reply {
	u, ok := f.users[req.fields.Get("user")]
	if !ok {
		return fail("user_not_found")
	}
	return okReply(map[string]any{"user": f.wireUser(u)})
}

func (f *Fake) lookupByEmail(req *request, call *Call) reply {
	email := req.fields.Get("email")
	for _, u := range f.users {
		if email != "" && strings.EqualFold(u.Email, email) && !u.Deleted {
			call.User = u.ID
			return okReply(map[string]any{"user": f.wireUser(u)})
		}
	}
	return fail("users_not_found")
}

func (f *Fake) userGroupMembers(req *request, call *Call) reply {
	members, ok := f.groups[req.fields.Get("usergroup")]
	if !ok {
		return fail("no_such_subteam")
	}
	return okReply(map[string]any{"users": append([]string{}, members...)})
}
