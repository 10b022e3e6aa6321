package slackfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/slack-go/slack"
)

// View is a modal opened, pushed or updated through the fake.
type View struct {
	ID         string
	ExternalID string
	Hash       string
	// User is who the view was opened for, when its trigger came from
	// TriggerID.
	User      string
	TriggerID string
	// RootViewID is the view a pushed view was pushed onto.
	RootViewID string
	Pushed     bool
	// Request is the latest view definition (replaced by views.update).
	Request slack.ModalViewRequest
	Updates int
}

type trigger struct {
	user    string
	issued  time.Time
	used    bool
	expired bool
	view    string // id of the view it opened
}

// TriggerID issues a trigger_id for user, as Slack puts in a slash command
// or interaction. It is valid for TriggerLife (by the fake's clock) and for
// one views.open or views.push. Trigger ids the fake did not issue are also
// accepted once.
func (f *Fake) TriggerID(user string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b [16]byte
	_, _ = rand.Read(b[:])
	f.seq++
	id := fmt.Sprintf("%d.%d.%s", f.now().Unix(), 4744562912+f.seq, hex.EncodeToString(b[:]))
	f.triggers[id] = &trigger{user: user, issued: f.now()}
	return id
}

// ExpireTrigger makes views.open and views.push with id answer
// expired_trigger_id.
func (f *Fake) ExpireTrigger(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.triggers[id]
	if !ok {
		t = &trigger{issued: f.now()}
		f.triggers[id] = t
	}
	t.expired = true
}

// Views returns every view in the order opened or pushed, at its latest
// state.
func (f *Fake) Views() []View {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]View, 0, len(f.views))
	for _, v := range f.views {
		out = append(out, *v)
	}
	return out
}

// useTrigger consumes a trigger_id, returning Slack's error code if it is
// expired or already used. Caller holds f.mu.
func (f *Fake) useTrigger(id string) (*trigger, string) {
	if id == "" {
		return nil, "invalid_trigger_id"
	}
	t, ok := f.triggers[id]
	if !ok {
		t = &trigger{issued: f.now()}
		f.triggers[id] = t
	}
	if t.expired || f.now().Sub(t.issued) > TriggerLife {
		return nil, "expired_trigger_id"
	}
	if t.used {
		return nil, "exchanged_trigger_id"
	}
	t.used = true
	return t, ""
}

// parseView decodes the "view" member of a views.* request. Caller holds f.mu.
func parseView(req *request, call *Call) (slack.ModalViewRequest, string) {
	raw, ok := req.raw["view"]
	if !ok {
		if s := req.fields.Get("view"); s != "" {
			raw = json.RawMessage(s)
		}
	}
	var v slack.ModalViewRequest
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return v, "invalid_arguments"
	}
	call.Blocks = v.Blocks
	if v.Type != slack.VTModal || v.Title == nil || v.Title.Text == "" {
		return v, "invalid_arguments"
	}
	return v, ""
}

func (f *Fake) newHash() string {
	f.seq++
	return fmt.Sprintf("%d.%08x", f.now().Unix(), f.seq)
}

func (v *View) wire() map[string]any {
	return map[string]any{
		"id":               v.ID,
		"team_id":          TeamID,
		"type":             string(v.Request.Type),
		"title":            v.Request.Title,
		"close":            v.Request.Close,
		"submit":           v.Request.Submit,
		"blocks":           v.Request.Blocks,
		"private_metadata": v.Request.PrivateMetadata,
		"callback_id":      v.Request.CallbackID,
		"external_id":      v.ExternalID,
		"state":            map[string]any{"values": map[string]any{}},
		"hash":             v.Hash,
		"clear_on_close":   v.Request.ClearOnClose,
		"notify_on_close":  v.Request.NotifyOnClose,
		"root_view_id":     v.RootViewID,
		"app_id":           AppID,
		"bot_id":           BotID,
	}
}

func (f *Fake) openView(req *request, call *Call) reply {
	return f.showView(req, call, false)
}

func (f *Fake) pushView(req *request, call *Call) reply {
	return f.showView(req, call, true)
}

func (f *Fake) showView(req *request, call *Call, push bool) reply {
	v, code := parseView(req, call)
	if code != "" {
		return fail(code)
	}
	if v.ExternalID != "" {
		for _, old := range f.views {
			if old.ExternalID == v.ExternalID {
				return fail("duplicate_external_id")
			}
		}
	}
	t, code := f.useTrigger(req.fields.Get("trigger_id"))
	if code != "" {
		return fail(code)
	}
	view := &View{
		ID: f.nextID("V"), ExternalID: v.ExternalID, User: t.user,
		TriggerID: req.fields.Get("trigger_id"), Pushed: push, Request: v,
	}
	view.Hash = f.newHash()
	view.RootViewID = view.ID
	if push {
		// Slack pushes onto the stack of the modal the interaction came
		// from; the fake's best guess is the user's latest root view.
		for i := len(f.views) - 1; i >= 0; i-- {
			if old := f.views[i]; old.User == t.user && !old.Pushed {
				view.RootViewID = old.ID
				break
			}
		}
	}
	t.view = view.ID
	f.views = append(f.views, view)
	call.User = view.User
	return okReply(map[string]any{"view": view.wire()})
}

func (f *Fake) updateView(req *request, call *Call) reply {
	v, code := parseView(req, call)
	if code != "" {
		return fail(code)
	}
	id, ext := req.fields.Get("view_id"), req.fields.Get("external_id")
	var view *View
	for _, old := range f.views {
		if (id != "" && old.ID == id) || (id == "" && ext != "" && old.ExternalID == ext) {
			view = old
			break
		}
	}
	if view == nil {
		return fail("not_found")
	}
	if h := req.fields.Get("hash"); h != "" && h != view.Hash {
		return fail("hash_conflict")
	}
	view.Request = v
	view.Hash = f.newHash()
	view.Updates++
	call.User = view.User
	return okReply(map[string]any{"view": view.wire()})
}
