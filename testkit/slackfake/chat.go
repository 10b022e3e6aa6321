package slackfake

import (
	"encoding/json"
	"net/http"
	"strings"
)

// resolveChannel maps what a caller may pass as channel (a channel id, a
// name with or without '#', a DM channel id, or a user id, which Slack
// treats as the bot's DM with that user) to a channel id. Caller holds f.mu.
func (f *Fake) resolveChannel(ch string) (string, bool) {
	if ch == "" {
		return "", false
	}
	if _, ok := f.channels[ch]; ok {
		return ch, true
	}
	if _, ok := f.userByDM[ch]; ok {
		return ch, true
	}
	if id, ok := f.byName[strings.TrimPrefix(ch, "#")]; ok {
		return id, true
	}
	if u, ok := f.users[ch]; ok && !u.Deleted && !u.IsBot {
		id, _ := f.openDM(ch)
		return id, true
	}
	return "", false
}

// openDM returns the bot's DM channel with user, creating it on first use;
// the bool reports whether it already existed. Caller holds f.mu.
func (f *Fake) openDM(user string) (string, bool) {
	if id, ok := f.dmByUser[user]; ok {
		return id, true
	}
	id := f.nextID("D")
	f.dmByUser[user] = id
	f.userByDM[id] = user
	return id, false
}

func (m *Message) wire() map[string]any {
	out := map[string]any{
		"type":   "message",
		"user":   m.User,
		"bot_id": BotID,
		"app_id": AppID,
		"team":   TeamID,
		"text":   m.Text,
		"ts":     m.TS,
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if m.rawBlocks != nil {
		out["blocks"] = m.rawBlocks
	}
	if m.rawAttachments != nil {
		out["attachments"] = m.rawAttachments
	}
	return out
}

func (f *Fake) postMessage(req *request, call *Call) reply {
	ch, ok := f.resolveChannel(req.fields.Get("channel"))
	if !ok {
		return fail("channel_not_found")
	}
	call.Channel = ch
	switch {
	case f.archived[ch]:
		return fail("is_archived")
	case f.outside[ch]:
		return fail("not_in_channel")
	}
	if !f.faults.allowPost(ch, f.now()) {
		return reply{status: http.StatusTooManyRequests, retryAfter: 1, err: "ratelimited"}
	}
	text, blocks, rawBlocks, atts, rawAtts, code := parseContent(req)
	if code != "" {
		return fail(code)
	}
	m := &Message{
		Channel: ch, TS: f.nextTS(), ThreadTS: req.fields.Get("thread_ts"), User: BotUserID,
		Text: text, Blocks: blocks, Attachments: atts, rawBlocks: rawBlocks, rawAttachments: rawAtts,
	}
	if f.messages[ch] == nil {
		f.messages[ch] = map[string]*Message{}
	}
	f.messages[ch][m.TS] = m
	f.order[ch] = append(f.order[ch], m.TS)
	call.TS = m.TS
	return okReply(map[string]any{"channel": ch, "ts": m.TS, "message": m.wire()})
}

func (f *Fake) update(req *request, call *Call) reply {
	ch, ok := f.resolveChannel(req.fields.Get("channel"))
	if !ok {
		return fail("channel_not_found")
	}
	call.Channel = ch
	switch {
	case f.archived[ch]:
		return fail("is_archived")
	case f.outside[ch]:
		return fail("not_in_channel")
	}
	m, ok := f.messages[ch][req.fields.Get("ts")]
	if !ok {
		return fail("message_not_found")
	}
	_, hasText := req.fields["text"]
	_, hasBlocks := req.fields["blocks"]
	_, hasAtts := req.fields["attachments"]
	if !hasText && !hasBlocks && !hasAtts {
		return fail("no_text")
	}
	// Slack keeps what the update leaves out; an empty array clears.
	next := *m
	if hasText {
		next.Text = req.fields.Get("text")
	}
	if hasBlocks {
		raw := req.fields.Get("blocks")
		next.Blocks.BlockSet = nil
		if err := json.Unmarshal([]byte(raw), &next.Blocks); err != nil {
			return fail("invalid_blocks")
		}
		next.rawBlocks = json.RawMessage(raw)
	}
	if hasAtts {
		raw := req.fields.Get("attachments")
		next.Attachments = nil
		if err := json.Unmarshal([]byte(raw), &next.Attachments); err != nil {
			return fail("invalid_attachments")
		}
		next.rawAttachments = json.RawMessage(raw)
	}
	next.Edits++
	*m = next
	return okReply(map[string]any{"channel": ch, "ts": m.TS, "text": m.Text, "message": m.wire()})
}

func (f *Fake) postEphemeral(req *request, call *Call) reply {
	ch, ok := f.resolveChannel(req.fields.Get("channel"))
	if !ok {
		return fail("channel_not_found")
	}
	call.Channel = ch
	user := req.fields.Get("user")
	if u, ok := f.users[user]; !ok || u.Deleted {
		return fail("user_not_in_channel")
	}
	text, blocks, rawBlocks, atts, rawAtts, code := parseContent(req)
	if code != "" {
		return fail(code)
	}
	ts := f.nextTS()
	call.TS = ts
	f.ephemerals[user] = append(f.ephemerals[user], Message{
		Channel: ch, TS: ts, ThreadTS: req.fields.Get("thread_ts"), User: BotUserID,
		Text: text, Blocks: blocks, Attachments: atts, rawBlocks: rawBlocks, rawAttachments: rawAtts,
	})
	return okReply(map[string]any{"message_ts": ts})
}

func (f *Fake) deleteMessage(req *request, call *Call) reply {
	ch, ok := f.resolveChannel(req.fields.Get("channel"))
	if !ok {
		return fail("channel_not_found")
	}
	call.Channel = ch
	ts := req.fields.Get("ts")
	if _, ok := f.messages[ch][ts]; !ok {
		return fail("message_not_found")
	}
	delete(f.messages[ch], ts)
	return okReply(map[string]any{"channel": ch, "ts": ts})
}

// conversationInfo answers conversations.info for channels registered with
// AddChannel (and DM channels); anything else is channel_not_found.
func (f *Fake) conversationInfo(req *request, call *Call) reply {
	ch := req.fields.Get("channel")
	call.Channel = ch
	if user, ok := f.userByDM[ch]; ok {
		return okReply(map[string]any{"channel": map[string]any{"id": ch, "is_im": true, "user": user, "is_member": true}})
	}
	name, ok := f.channels[ch]
	if !ok {
		return fail("channel_not_found")
	}
	return okReply(map[string]any{"channel": map[string]any{
		"id": ch, "name": name, "is_channel": true, "is_private": false,
		"is_member": !f.outside[ch], "is_archived": f.archived[ch],
	}})
}
