package slackapi

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/slack-go/slack"
)

// Message is what tokken posts. Text is sent as is (not escaped): callers
// render mrkdwn and escape user-supplied text themselves. With Blocks set,
// Text is the notification and screen-reader fallback and should still be
// given.
type Message struct {
	Text        string
	Blocks      []slack.Block
	Attachments []slack.Attachment
	// ThreadTS posts the message as a reply in that thread.
	ThreadTS string
	// Broadcast also shows a thread reply in the channel.
	Broadcast bool
}

// MessageRef locates a posted message: the channel id Slack resolved the
// destination to and the message's ts. It is what chat.update needs.
type MessageRef struct {
	Channel string
	TS      string
}

func (m Message) options(forUpdate bool) []slack.MsgOption {
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false)}
	// An update replaces the whole message: an empty block list clears the
	// old blocks instead of keeping them.
	if len(m.Blocks) > 0 || forUpdate {
		opts = append(opts, slack.MsgOptionBlocks(m.Blocks...))
	}
	if m.Attachments != nil {
		opts = append(opts, slack.MsgOptionAttachments(m.Attachments...))
	}
	if m.ThreadTS != "" && !forUpdate {
		opts = append(opts, slack.MsgOptionTS(m.ThreadTS))
	}
	if m.Broadcast && !forUpdate {
		opts = append(opts, slack.MsgOptionBroadcast())
	}
	return opts
}

// AuthTest checks the token and returns the bot's identity.
func (c *Client) AuthTest(ctx context.Context) (*slack.AuthTestResponse, error) {
	var res *slack.AuthTestResponse
	err := c.do(ctx, call{method: "auth.test"}, func(ctx context.Context) error {
		var err error
		res, err = c.api.AuthTestContext(ctx)
		return err
	})
	return res, err
}

// Team returns the id of the team the bot token belongs to: the workspace
// tokken is installed in. It asks Slack (auth.test) until Slack answers,
// then remembers the answer for the life of the Client.
func (c *Client) Team(ctx context.Context) (string, error) {
	c.mu.Lock()
	team := c.team
	c.mu.Unlock()
	if team != "" {
		return team, nil
	}
	res, err := c.AuthTest(ctx)
	if err != nil {
		return "", err
	}
	if res.TeamID == "" {
		return "", errors.New("slack auth.test: no team_id in the answer")
	}
	c.mu.Lock()
	c.team = res.TeamID
	c.mu.Unlock()
	return res.TeamID, nil
}

// PostMessage posts m to channel (an id, a #name, or a user id for the
// bot's DM) with chat.postMessage.
func (c *Client) PostMessage(ctx context.Context, channel string, m Message) (MessageRef, error) {
	var ref MessageRef
	err := c.do(ctx, call{method: "chat.postMessage", channel: channel}, func(ctx context.Context) error {
		var err error
		ref.Channel, ref.TS, err = c.api.PostMessageContext(ctx, channel, m.options(false)...)
		return err
	})
	return ref, err
}

// UpdateMessage replaces the text and blocks of the message at ref with m
// (chat.update); attachments are replaced only when m has some.
func (c *Client) UpdateMessage(ctx context.Context, ref MessageRef, m Message) error {
	return c.do(ctx, call{method: "chat.update", channel: ref.Channel}, func(ctx context.Context) error {
		_, _, _, err := c.api.UpdateMessageContext(ctx, ref.Channel, ref.TS, m.options(true)...)
		return err
	})
}

// DeleteMessage removes the message at ref (chat.delete), e.g. a DM whose
// credentials have expired.
func (c *Client) DeleteMessage(ctx context.Context, ref MessageRef) error {
	return c.do(ctx, call{method: "chat.delete", channel: ref.Channel}, func(ctx context.Context) error {
		_, _, err := c.api.DeleteMessageContext(ctx, ref.Channel, ref.TS)
		return err
	})
}

// PostEphemeral shows m to user only, in channel (chat.postEphemeral).
// Ephemeral messages cannot be updated later.
func (c *Client) PostEphemeral(ctx context.Context, channel, user string, m Message) error {
	return c.do(ctx, call{method: "chat.postEphemeral", channel: channel}, func(ctx context.Context) error {
		_, err := c.api.PostEphemeralContext(ctx, channel, user, m.options(false)...)
		return err
	})
}

// DM sends m to user in the bot's direct-message channel, opening it with
// conversations.open the first time (the channel id is then remembered).
func (c *Client) DM(ctx context.Context, user string, m Message) (MessageRef, error) {
	ch, err := c.dmChannel(ctx, user)
	if err != nil {
		return MessageRef{}, fmt.Errorf("dm %s: %w", user, err)
	}
	ref, err := c.PostMessage(ctx, ch, m)
	if ErrorCode(err) == "channel_not_found" {
		c.mu.Lock()
		delete(c.dms, user)
		c.mu.Unlock()
	}
	if err != nil {
		return MessageRef{}, fmt.Errorf("dm %s: %w", user, err)
	}
	return ref, nil
}

func (c *Client) dmChannel(ctx context.Context, user string) (string, error) {
	c.mu.Lock()
	ch, ok := c.dms[user]
	c.mu.Unlock()
	if ok {
		return ch, nil
	}
	err := c.do(ctx, call{method: "conversations.open"}, func(ctx context.Context) error {
		res, _, _, err := c.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}})
		if err != nil {
			return err
		}
		if res == nil || res.ID == "" {
			return errors.New("conversations.open returned no channel")
		}
		ch = res.ID
		return nil
	})
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.dms[user] = ch
	c.mu.Unlock()
	return ch, nil
}

// Response is a message for a response_url. By default it is shown only to
// the user who acted (ephemeral); InChannel shows it to the channel.
// ReplaceOriginal rewrites the message the interaction came from;
// DeleteOriginal removes it.
type Response struct {
	Text            string
	Blocks          []slack.Block
	InChannel       bool
	ReplaceOriginal bool
	DeleteOriginal  bool
	ThreadTS        string
}

// PostToResponseURL posts r to a response_url taken from a verified Slack
// request. Slack accepts five posts within 30 minutes per URL; for messages
// that change over hours use UpdateMessage. Only https Slack hosts and the
// configured API host are accepted, so a forged URL cannot make tokken post
// message content elsewhere.
func (c *Client) PostToResponseURL(ctx context.Context, responseURL string, r Response) error {
	if err := c.checkResponseURL(responseURL); err != nil {
		return fmt.Errorf("slack response_url: %w", err)
	}
	typ := slack.ResponseTypeEphemeral
	if r.InChannel {
		typ = slack.ResponseTypeInChannel
	}
	opts := []slack.MsgOption{slack.MsgOptionResponseURL(responseURL, typ), slack.MsgOptionText(r.Text, false)}
	if len(r.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(r.Blocks...))
	}
	if r.ThreadTS != "" {
		opts = append(opts, slack.MsgOptionTS(r.ThreadTS))
	}
	if r.ReplaceOriginal {
		opts = append(opts, slack.MsgOptionReplaceOriginal(responseURL))
	}
	if r.DeleteOriginal {
		opts = append(opts, slack.MsgOptionDeleteOriginal(responseURL))
	}
	return c.do(ctx, call{method: "response_url"}, func(ctx context.Context) error {
		_, _, _, err := c.api.SendMessageContext(ctx, "", opts...)
		var ue *url.Error
		if errors.As(err, &ue) {
			// The URL is a bearer capability: keep it out of errors and logs.
			return &url.Error{Op: ue.Op, URL: "response_url", Err: ue.Err}
		}
		return err
	})
}

func (c *Client) checkResponseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("not an absolute URL")
	}
	host := strings.ToLower(u.Hostname())
	slackHost := host == "slack.com" || strings.HasSuffix(host, ".slack.com") ||
		host == "slack-gov.com" || strings.HasSuffix(host, ".slack-gov.com")
	if u.Scheme == "https" && slackHost {
		return nil
	}
	if u.Scheme == c.apiURL.Scheme && strings.EqualFold(u.Host, c.apiURL.Host) {
		return nil
	}
	return fmt.Errorf("host %q is neither a Slack host over https nor the API host", u.Host)
}

// Undeliverable reports whether err is Slack refusing posts to a channel
// until a person acts: the channel does not exist or is private without
// the bot (channel_not_found), the bot is not a member (not_in_channel),
// the channel is archived (is_archived), or the workspace restricts
// posting there (restricted_action). Retrying cannot help; telling someone
// what to fix can. Rate limits, 5xx and timeouts are retried by the client
// and are not undeliverable.
func Undeliverable(err error) bool {
	switch ErrorCode(err) {
	case "channel_not_found", "not_in_channel", "is_archived", "restricted_action":
		return true
	}
	return false
}

// UndeliverableDM reports whether err is Slack refusing a direct message
// to a user for good: Undeliverable, or conversations.open refusing the
// user (user_disabled: deactivated; user_not_found; user_not_visible: the
// bot may not see them). Retrying cannot help; someone must be told.
func UndeliverableDM(err error) bool {
	switch ErrorCode(err) {
	case "user_disabled", "user_not_found", "user_not_visible":
		return true
	}
	return Undeliverable(err)
}

// ChannelInfo is what conversations.info says about a channel: enough to
// tell, without posting, whether the bot can post there.
type ChannelInfo struct {
	ID, Name   string
	IsMember   bool // the bot is in the channel
	IsArchived bool
	IsPrivate  bool
}

// ConversationInfo looks channel up with conversations.info. A channel
// that does not exist, or is private without the bot, is an error with
// code channel_not_found.
func (c *Client) ConversationInfo(ctx context.Context, channel string) (ChannelInfo, error) {
	var info ChannelInfo
	err := c.do(ctx, call{method: "conversations.info", channel: channel}, func(ctx context.Context) error {
		ch, err := c.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: channel})
		if err != nil {
			return err
		}
		info = ChannelInfo{ID: ch.ID, Name: ch.Name, IsMember: ch.IsMember, IsArchived: ch.IsArchived, IsPrivate: ch.IsPrivate}
		return nil
	})
	return info, err
}

// PostProblem says, without posting, why the bot cannot post to channel:
// the Slack code a post would meet ("channel_not_found", "not_in_channel",
// "is_archived"), or "" when it can. err is a failure to find out.
func (c *Client) PostProblem(ctx context.Context, channel string) (code string, err error) {
	info, err := c.ConversationInfo(ctx, channel)
	switch {
	case ErrorCode(err) == "channel_not_found":
		return "channel_not_found", nil
	case err != nil:
		return "", err
	case info.IsArchived:
		return "is_archived", nil
	case !info.IsMember:
		return "not_in_channel", nil
	}
	return "", nil
}
