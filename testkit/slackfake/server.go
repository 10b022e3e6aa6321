package slackfake

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// request is one parsed Web API call.
type request struct {
	method string
	token  string
	fields url.Values
	raw    map[string]json.RawMessage // members of a JSON body; nil for forms
}

// reply is a handler's answer. A zero status means 200; err, when set,
// answers ok:false with that code; body holds the ok:true members.
type reply struct {
	status     int
	retryAfter int
	err        string
	body       map[string]any
	text       string // plain-text body instead of JSON (response_url)
}

func fail(code string) reply { return reply{err: code} }

func okReply(body map[string]any) reply { return reply{body: body} }

// handlers maps Web API methods to their implementation; each runs with
// f.mu held and fills in call with what it resolved.
func (f *Fake) handler(method string) func(*request, *Call) reply {
	switch method {
	case "auth.test":
		return f.authTest
	case "chat.postMessage":
		return f.postMessage
	case "chat.update":
		return f.update
	case "chat.postEphemeral":
		return f.postEphemeral
	case "chat.delete":
		return f.deleteMessage
	case "conversations.open":
		return f.openConversation
	case "conversations.info":
		return f.conversationInfo
	case "views.open":
		return f.openView
	case "views.push":
		return f.pushView
	case "views.update":
		return f.updateView
	case "users.info":
		return f.userInfo
	case "users.lookupByEmail":
		return f.lookupByEmail
	case "usergroups.users.list":
		return f.userGroupMembers
	}
	return nil
}

func (f *Fake) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if id, ok := strings.CutPrefix(r.URL.Path, "/response/"); ok {
		f.serveResponseURL(w, r, id)
		return
	}
	method, ok := strings.CutPrefix(r.URL.Path, "/api/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	req, perr := parseRequest(r, method)
	if !f.waitLatency(r) {
		return
	}
	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		hook(method, req.fields)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	call := Call{Method: method, Token: req.token, Fields: req.fields, At: f.now()}
	fillCommon(&call, req)
	rep := f.dispatch(req, perr, &call)
	call.Status = rep.status
	if call.Status == 0 {
		call.Status = http.StatusOK
	}
	call.Error = rep.err
	f.record(call)
	writeReply(w, rep)
}

// dispatch applies faults, authentication and the method. Caller holds f.mu.
func (f *Fake) dispatch(req *request, perr error, call *Call) reply {
	if status, ok := f.faults.takeStatus(req.method); ok {
		return reply{status: status, text: "<html><body>Slack is having trouble</body></html>"}
	}
	if wait, ok := f.faults.takeRateLimit(req.method, f.now()); ok {
		return reply{status: http.StatusTooManyRequests, retryAfter: wait, err: "ratelimited"}
	}
	if perr != nil {
		return fail("invalid_form_data")
	}
	switch {
	case req.token == "":
		return fail("not_authed")
	case req.token != f.token:
		return fail("invalid_auth")
	}
	h := f.handler(req.method)
	if h == nil {
		return fail("unknown_method")
	}
	return h(req, call)
}

func writeReply(w http.ResponseWriter, rep reply) {
	status := rep.status
	if status == 0 {
		status = http.StatusOK
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(rep.retryAfter))
	}
	if rep.text != "" {
		ct := "text/plain; charset=utf-8"
		if status >= 500 {
			ct = "text/html; charset=utf-8"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, rep.text)
		return
	}
	body := map[string]any{"ok": rep.err == ""}
	if rep.err != "" {
		body["error"] = rep.err
	} else {
		for k, v := range rep.body {
			body[k] = v
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// parseRequest reads a form (body or query) or JSON request the way Slack
// does: the token comes from the form field or the bearer header.
func parseRequest(r *http.Request, method string) (*request, error) {
	req := &request{method: method, fields: url.Values{}}
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		req.token = auth
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			return req, err
		}
		if err := json.Unmarshal(body, &req.raw); err != nil {
			return req, err
		}
		for k, v := range req.raw {
			var s string
			if json.Unmarshal(v, &s) == nil {
				req.fields.Set(k, s)
			} else {
				req.fields.Set(k, string(v))
			}
		}
		for k, v := range r.URL.Query() {
			req.fields[k] = v
		}
	} else {
		if err := r.ParseForm(); err != nil {
			return req, err
		}
		req.fields = r.Form
	}
	if t := req.fields.Get("token"); t != "" && req.token == "" {
		req.token = t
	}
	return req, nil
}

// fillCommon copies the fields every message-like call shares into c.
func fillCommon(c *Call, req *request) {
	c.Channel = req.fields.Get("channel")
	c.TS = req.fields.Get("ts")
	c.ThreadTS = req.fields.Get("thread_ts")
	c.Text = req.fields.Get("text")
	c.User = req.fields.Get("user")
	if b := req.fields.Get("blocks"); b != "" {
		_ = json.Unmarshal([]byte(b), &c.Blocks)
	}
	if a := req.fields.Get("attachments"); a != "" {
		_ = json.Unmarshal([]byte(a), &c.Attachments)
	}
}

// waitLatency delays the answer by the configured latency; false if the
// client gave up first.
func (f *Fake) waitLatency(r *http.Request) bool {
	f.mu.Lock()
	d := f.faults.latency
	f.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// parseContent validates the text, blocks and attachments of a message
// call, returning Slack's error code on failure.
func parseContent(req *request) (text string, blocks slack.Blocks, rawBlocks json.RawMessage, atts []slack.Attachment, rawAtts json.RawMessage, code string) {
	text = req.fields.Get("text")
	if b := req.fields.Get("blocks"); b != "" {
		if err := json.Unmarshal([]byte(b), &blocks); err != nil {
			return "", slack.Blocks{}, nil, nil, nil, "invalid_blocks"
		}
		rawBlocks = json.RawMessage(b)
	}
	if a := req.fields.Get("attachments"); a != "" {
		if err := json.Unmarshal([]byte(a), &atts); err != nil {
			return "", slack.Blocks{}, nil, nil, nil, "invalid_attachments"
		}
		rawAtts = json.RawMessage(a)
	}
	if text == "" && len(blocks.BlockSet) == 0 && len(atts) == 0 {
		return "", slack.Blocks{}, nil, nil, nil, "no_text"
	}
	return text, blocks, rawBlocks, atts, rawAtts, ""
}
