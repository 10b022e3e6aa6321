package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/infra/slackapi"
)

// JobMentionReply answers an @-mention of the bot in its thread.
const JobMentionReply = "mention.reply"

// mention is the part of an app_mention event the reply needs.
type mention struct {
	Channel  string `json:"channel"`
	User     string `json:"user"`
	TS       string `json:"ts"`
	ThreadTS string `json:"thread_ts,omitempty"`
}

// registerMention answers "@tokken" with a pointer to the commands, in the
// mention's thread. The event is only recorded and queued at ingress; the
// worker posts. The job id is derived from the event id, so a redelivered
// event cannot post twice even if its dedup record were lost.
func registerMention(a *app) {
	a.router.HandleEvent("app_mention", func(ctx context.Context, ev router.Event) error {
		var m mention
		if err := json.Unmarshal(ev.Inner, &m); err != nil || m.Channel == "" || m.TS == "" {
			return nil // nothing to answer to; a retry would not change that
		}
		j, err := bot.NewJob("mention/"+ev.ID, JobMentionReply, m)
		if err != nil {
			return err
		}
		return a.queue.Enqueue(ctx, j)
	})
	if a.slack == nil {
		return
	}
	a.jobs.Handle(JobMentionReply, func(ctx context.Context, j bot.Job) error {
		var m mention
		if err := j.Decode(&m); err != nil {
			return err
		}
		thread := m.ThreadTS
		if thread == "" {
			thread = m.TS
		}
		text := fmt.Sprintf("Hi <@%s>! I handle %s. Try `/access help`.", m.User, strings.Join(a.router.Commands(), ", "))
		if _, err := a.slack.PostMessage(ctx, m.Channel, slackapi.Message{Text: text, ThreadTS: thread}); err != nil {
			return fmt.Errorf("reply to mention in %s: %w", m.Channel, err)
		}
		return nil
	})
}
