package slackfake

import (
	"encoding/json"
	"net/http"
)

// responseURL is one response_url handed to a test.
type responseURL struct {
	channel, ts string // the message it belongs to, if bound
	created     int64  // Unix nanoseconds by the fake's clock
	posts       int
}

// ResponseURL returns a response_url served by the fake, as Slack puts in
// slash commands and interactions. Posts to it are recorded as calls of
// method "response_url" (see ResponsePosts); Slack's limits apply: at most
// ResponseURLLimit posts within ResponseURLLife, then HTTP 404 "used_url"
// or "expired_url". Calling it again with the same id returns the same URL.
func (f *Fake) ResponseURL(id string) string {
	return f.bindResponseURL(id, "", "")
}

// ResponseURLForMessage is ResponseURL for an interaction on the message at
// channel and ts: replace_original rewrites that message, delete_original
// removes it, and response_type "in_channel" posts to its channel.
func (f *Fake) ResponseURLForMessage(id, channel, ts string) string {
	return f.bindResponseURL(id, channel, ts)
}

func (f *Fake) bindResponseURL(id, channel, ts string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.responses[id]; !ok {
		f.responses[id] = &responseURL{channel: channel, ts: ts, created: f.now().UnixNano()}
	}
	return f.srv.URL + "/response/" + id
}

// ResponsePosts returns the posts made to the response_url id, refused ones
// included.
func (f *Fake) ResponsePosts(id string) []Call {
	var out []Call
	for _, c := range f.Calls("response_url") {
		if c.ResponseURLID == id {
			out = append(out, c)
		}
	}
	return out
}

func (f *Fake) serveResponseURL(w http.ResponseWriter, r *http.Request, id string) {
	req, perr := parseRequest(r, "response_url")
	if !f.waitLatency(r) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	call := Call{Method: "response_url", ResponseURLID: id, Fields: req.fields, At: f.now()}
	fillCommon(&call, req)
	rep := f.respond(id, req, perr, &call)
	call.Status = rep.status
	if call.Status == 0 {
		call.Status = http.StatusOK
	}
	call.Error = rep.err
	f.record(call)
	writeReply(w, rep)
}

func notFound(code string) reply {
	return reply{status: http.StatusNotFound, err: code, text: code}
}

// respond applies one response_url post. Caller holds f.mu.
func (f *Fake) respond(id string, req *request, perr error, call *Call) reply {
	if status, ok := f.faults.takeStatus("response_url"); ok {
		return reply{status: status, text: "<html><body>Slack is having trouble</body></html>"}
	}
	if wait, ok := f.faults.takeRateLimit("response_url", f.now()); ok {
		return reply{status: http.StatusTooManyRequests, retryAfter: wait, err: "ratelimited"}
	}
	ru, ok := f.responses[id]
	switch {
	case !ok:
		return notFound("no_service")
	case f.now().UnixNano()-ru.created > int64(ResponseURLLife):
		return notFound("expired_url")
	case ru.posts >= ResponseURLLimit:
		return notFound("used_url")
	case perr != nil || req.raw == nil:
		return reply{status: http.StatusBadRequest, err: "invalid_payload", text: "invalid_payload"}
	}
	ru.posts++
	call.Channel, call.TS = ru.channel, ru.ts
	if ru.channel == "" {
		return okReply(nil)
	}
	m, exists := f.messages[ru.channel][ru.ts]
	switch {
	case req.fields.Get("delete_original") == "true":
		if exists {
			delete(f.messages[ru.channel], ru.ts)
		}
	case req.fields.Get("replace_original") == "true":
		if exists {
			m.Text = req.fields.Get("text")
			m.Blocks, m.rawBlocks = call.Blocks, rawMember(req, "blocks")
			m.Attachments, m.rawAttachments = call.Attachments, rawMember(req, "attachments")
			m.Edits++
		}
	case req.fields.Get("response_type") == "in_channel":
		nm := &Message{
			Channel: ru.channel, TS: f.nextTS(), ThreadTS: req.fields.Get("thread_ts"), User: BotUserID,
			Text: req.fields.Get("text"), Blocks: call.Blocks, Attachments: call.Attachments,
			rawBlocks: rawMember(req, "blocks"), rawAttachments: rawMember(req, "attachments"),
		}
		if f.messages[ru.channel] == nil {
			f.messages[ru.channel] = map[string]*Message{}
		}
		f.messages[ru.channel][nm.TS] = nm
		f.order[ru.channel] = append(f.order[ru.channel], nm.TS)
		call.TS = nm.TS
	}
	return okReply(nil)
}

func rawMember(req *request, name string) json.RawMessage {
	if v, ok := req.raw[name]; ok && string(v) != "null" {
		return v
	}
	return nil
}
