package router

import (
	"context"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/slackapi"
)

// Reply is a message in the JSON shape Slack accepts as the synchronous
// answer to a command or interaction, and in a response_url post. Empty
// fields are omitted (Slack rejects "blocks": null).
type Reply struct {
	ResponseType    string        `json:"response_type,omitempty"`
	Text            string        `json:"text,omitempty"`
	Blocks          *slack.Blocks `json:"blocks,omitempty"`
	ThreadTS        string        `json:"thread_ts,omitempty"`
	ReplaceOriginal bool          `json:"replace_original,omitempty"`
	DeleteOriginal  bool          `json:"delete_original,omitempty"`
}

// ReplyFrom converts a handler's message to its wire form; nil stays nil.
func ReplyFrom(m *slack.Msg) *Reply {
	if m == nil {
		return nil
	}
	r := &Reply{
		ResponseType: m.ResponseType, Text: m.Text, ThreadTS: m.ThreadTimestamp,
		ReplaceOriginal: m.ReplaceOriginal, DeleteOriginal: m.DeleteOriginal,
	}
	if len(m.Blocks.BlockSet) > 0 {
		b := m.Blocks
		r.Blocks = &b
	}
	return r
}

// RespondPayload is the payload of a JobRespond job.
type RespondPayload struct {
	ResponseURL string `json:"response_url"`
	Reply       Reply  `json:"reply"`
}

// responseURLPoster is the slackapi call RespondJob makes.
type responseURLPoster interface {
	PostToResponseURL(ctx context.Context, responseURL string, r slackapi.Response) error
}

// RespondJob returns the handler of JobRespond jobs: it posts a slow
// command's answer to the command's response_url.
func RespondJob(c responseURLPoster) bot.JobHandler {
	return func(ctx context.Context, j bot.Job) error {
		var p RespondPayload
		if err := j.Decode(&p); err != nil {
			return err
		}
		if p.ResponseURL == "" {
			return bot.Permanent(fmt.Errorf("respond job %s: no response_url", j.ID))
		}
		resp := slackapi.Response{
			Text:            p.Reply.Text,
			InChannel:       p.Reply.ResponseType == slack.ResponseTypeInChannel,
			ReplaceOriginal: p.Reply.ReplaceOriginal,
			DeleteOriginal:  p.Reply.DeleteOriginal,
			ThreadTS:        p.Reply.ThreadTS,
		}
		if p.Reply.Blocks != nil {
			resp.Blocks = p.Reply.Blocks.BlockSet
		}
		if err := c.PostToResponseURL(ctx, p.ResponseURL, resp); err != nil {
			return fmt.Errorf("respond job %s: %w", j.ID, err)
		}
		return nil
	}
}
