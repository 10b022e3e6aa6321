package slackfake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// clock is a settable time source for the fake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1732245600, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

// setup returns a fake with a channel, two users and a group, and a slack-go
// client aimed at it.
func setup(t *testing.T, opts ...Option) (*Fake, *slack.Client) {
	t.Helper()
	f := New(t, opts...)
	f.AddChannel("C0OPS00001", "ops")
	f.AddUser(User{ID: "U0ALICE001", Name: "alice", RealName: "Alice A", Email: "alice@example.com", TZ: "Asia/Tokyo"})
	f.AddUser(User{ID: "U0BOB00001", Name: "bob", Email: "bob@example.com", TZ: "UTC"})
	f.AddUserGroup("S0ONCALL01", "U0ALICE001", "U0BOB00001")
	return f, f.Client()
}

func slackCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}

func TestAuthTest(t *testing.T) {
	f, api := setup(t)
	res, err := api.AuthTestContext(t.Context())
	if err != nil {
		t.Fatalf("auth.test: %v", err)
	}
	if res.UserID != BotUserID || res.TeamID != TeamID || res.BotID != BotID {
		t.Errorf("auth.test = %+v", res)
	}
	for _, tc := range []struct{ token, want string }{{"xoxb-wrong", "invalid_auth"}, {"", "not_authed"}} {
		bad := slack.New(tc.token, slack.OptionAPIURL(f.APIURL()))
		if _, err := bad.AuthTestContext(t.Context()); slackCode(err) != tc.want {
			t.Errorf("token %q: err = %v, want %s", tc.token, err, tc.want)
		}
	}
	if calls := f.Calls("auth.test"); len(calls) != 3 || calls[0].Token != DefaultToken || !calls[0].OK() || calls[1].OK() {
		t.Errorf("recorded auth.test calls = %+v", calls)
	}
}

func TestPostMessage(t *testing.T) {
	f, api := setup(t)
	ctx := t.Context()
	tests := []struct {
		name    string
		channel string
		opts    []slack.MsgOption
		want    string // error code
		wantCh  string
	}{
		{"by id with blocks", "C0OPS00001", []slack.MsgOption{slack.MsgOptionText("fallback", false), slack.MsgOptionBlocks(section("*hi*"))}, "", "C0OPS00001"},
		{"by name", "#ops", []slack.MsgOption{slack.MsgOptionText("hello", false)}, "", "C0OPS00001"},
		{"user id opens DM", "U0ALICE001", []slack.MsgOption{slack.MsgOptionText("psst", false)}, "", ""},
		{"unknown channel", "C0NOPE0001", []slack.MsgOption{slack.MsgOptionText("x", false)}, "channel_not_found", ""},
		{"no content", "C0OPS00001", nil, "no_text", ""},
	}
	var last string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch, ts, err := api.PostMessageContext(ctx, tc.channel, tc.opts...)
			if code := slackCode(err); code != tc.want || (tc.want == "" && err != nil) {
				t.Fatalf("err = %v, want code %q", err, tc.want)
			}
			if tc.want != "" {
				return
			}
			if tc.wantCh != "" && ch != tc.wantCh {
				t.Errorf("channel = %s, want %s", ch, tc.wantCh)
			}
			if len(ts) != len("1732245600.000100") || ts <= last {
				t.Errorf("ts %q not Slack-shaped or not after %q", ts, last)
			}
			last = ts
			if _, ok := f.Message(ch, ts); !ok {
				t.Errorf("message %s/%s not in model", ch, ts)
			}
		})
	}
	calls := f.Calls("chat.postMessage")
	if len(calls) != len(tests) {
		t.Fatalf("recorded %d calls, want %d", len(calls), len(tests))
	}
	first := calls[0]
	if first.Text != "fallback" || len(first.Blocks.BlockSet) != 1 || first.Token != DefaultToken {
		t.Errorf("first call = %+v", first)
	}
	sec, ok := first.Blocks.BlockSet[0].(*slack.SectionBlock)
	if !ok || sec.Text.Text != "*hi*" {
		t.Errorf("parsed block = %#v", first.Blocks.BlockSet[0])
	}
	if dms := f.DMs("U0ALICE001"); len(dms) != 1 || dms[0].Text != "psst" {
		t.Errorf("DMs(alice) = %+v", dms)
	}
}

func TestThreadUpdateDelete(t *testing.T) {
	f, api := setup(t)
	ctx := t.Context()
	ch, parent, err := api.PostMessageContext(ctx, "C0OPS00001", slack.MsgOptionText("request", false), slack.MsgOptionBlocks(section("pending")))
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"reminder 1", "reminder 2"} {
		if _, _, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText(text, false), slack.MsgOptionTS(parent)); err != nil {
			t.Fatal(err)
		}
	}
	thread := f.Thread(ch, parent)
	if len(thread) != 2 || thread[0].Text != "reminder 1" || thread[1].ThreadTS != parent {
		t.Errorf("Thread = %+v", thread)
	}

	// A text-only update keeps the blocks, as Slack does.
	if _, _, _, err := api.UpdateMessageContext(ctx, ch, parent, slack.MsgOptionText("approved", false)); err != nil {
		t.Fatal(err)
	}
	m, _ := f.Message(ch, parent)
	if m.Text != "approved" || m.Edits != 1 || len(m.Blocks.BlockSet) != 1 {
		t.Errorf("after update: %+v", m)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, ch, parent, slack.MsgOptionBlocks(section("done"))); err != nil {
		t.Fatal(err)
	}
	m, _ = f.Message(ch, parent)
	if sec := m.Blocks.BlockSet[0].(*slack.SectionBlock); sec.Text.Text != "done" || m.Edits != 2 {
		t.Errorf("after block update: %+v", m)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, ch, "1.000001", slack.MsgOptionText("x", false)); slackCode(err) != "message_not_found" {
		t.Errorf("update unknown ts: %v", err)
	}

	if _, _, err := api.DeleteMessageContext(ctx, ch, thread[0].TS); err != nil {
		t.Fatal(err)
	}
	if got := f.Thread(ch, parent); len(got) != 1 || got[0].Text != "reminder 2" {
		t.Errorf("Thread after delete = %+v", got)
	}
	if _, _, err := api.DeleteMessageContext(ctx, ch, thread[0].TS); slackCode(err) != "message_not_found" {
		t.Errorf("second delete: %v", err)
	}
}

func TestEphemeralAndDM(t *testing.T) {
	f, api := setup(t)
	ctx := t.Context()
	if _, err := api.PostEphemeralContext(ctx, "C0OPS00001", "U0ALICE001", slack.MsgOptionText("only you", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PostEphemeralContext(ctx, "C0OPS00001", "U0NOBODY01", slack.MsgOptionText("x", false)); slackCode(err) != "user_not_in_channel" {
		t.Errorf("ephemeral to unknown user: %v", err)
	}
	if e := f.Ephemerals("U0ALICE001"); len(e) != 1 || e[0].Text != "only you" || e[0].Channel != "C0OPS00001" {
		t.Errorf("Ephemerals = %+v", e)
	}

	ch, noOp, already, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0BOB00001"}})
	if err != nil || noOp || already || !strings.HasPrefix(ch.ID, "D") {
		t.Fatalf("conversations.open = %+v %v %v %v", ch, noOp, already, err)
	}
	again, _, already, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0BOB00001"}})
	if err != nil || again.ID != ch.ID || !already {
		t.Errorf("second open = %+v already=%v err=%v", again, already, err)
	}
	if _, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0NOBODY01"}}); slackCode(err) != "user_not_found" {
		t.Errorf("open unknown user: %v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, ch.ID, slack.MsgOptionText("your credentials", false)); err != nil {
		t.Fatal(err)
	}
	if dms := f.DMs("U0BOB00001"); len(dms) != 1 || dms[0].Channel != ch.ID {
		t.Errorf("DMs(bob) = %+v", dms)
	}
	if got, ok := f.DMChannel("U0BOB00001"); !ok || got != ch.ID {
		t.Errorf("DMChannel = %s %v", got, ok)
	}
}

func modal(title string) slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:   slack.VTModal,
		Title:  slack.NewTextBlockObject(slack.PlainTextType, title, false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{section("body")}},
	}
}

func TestViews(t *testing.T) {
	clk := newClock()
	f, api := setup(t, WithClock(clk.Now))
	ctx := t.Context()

	trig := f.TriggerID("U0ALICE001")
	res, err := api.OpenViewContext(ctx, trig, modal("Request access"))
	if err != nil {
		t.Fatalf("views.open: %v", err)
	}
	if !strings.HasPrefix(res.ID, "V") || res.Hash == "" || res.Title.Text != "Request access" {
		t.Errorf("view = %+v", res.View)
	}
	if _, err := api.OpenViewContext(ctx, trig, modal("again")); slackCode(err) != "exchanged_trigger_id" {
		t.Errorf("reused trigger: %v", err)
	}

	late := f.TriggerID("U0ALICE001")
	clk.Advance(TriggerLife + time.Millisecond)
	if _, err := api.OpenViewContext(ctx, late, modal("late")); slackCode(err) != "expired_trigger_id" {
		t.Errorf("trigger older than 3s: %v", err)
	}
	f.ExpireTrigger("123.456.abc")
	if _, err := api.OpenViewContext(ctx, "123.456.abc", modal("x")); slackCode(err) != "expired_trigger_id" {
		t.Errorf("expired trigger: %v", err)
	}
	if _, err := api.OpenViewContext(ctx, f.TriggerID("U0ALICE001"), slack.ModalViewRequest{Type: slack.VTModal}); slackCode(err) != "invalid_arguments" {
		t.Errorf("view without title: %v", err)
	}

	pushed, err := api.PushViewContext(ctx, f.TriggerID("U0ALICE001"), modal("Confirm"))
	if err != nil {
		t.Fatalf("views.push: %v", err)
	}
	if _, err := api.UpdateViewContext(ctx, modal("Approved"), "", "stale-hash", res.ID); slackCode(err) != "hash_conflict" {
		t.Errorf("stale hash: %v", err)
	}
	upd, err := api.UpdateViewContext(ctx, modal("Approved"), "", res.Hash, res.ID)
	if err != nil || upd.Hash == res.Hash {
		t.Fatalf("views.update = %+v, %v", upd, err)
	}
	if _, err := api.UpdateViewContext(ctx, modal("x"), "", "", "V000000000"); slackCode(err) != "not_found" {
		t.Errorf("update unknown view: %v", err)
	}

	views := f.Views()
	if len(views) != 2 {
		t.Fatalf("Views = %+v", views)
	}
	if v := views[0]; v.Request.Title.Text != "Approved" || v.Updates != 1 || v.User != "U0ALICE001" {
		t.Errorf("root view = %+v", v)
	}
	if v := views[1]; !v.Pushed || v.RootViewID != res.ID || v.ID != pushed.ID {
		t.Errorf("pushed view = %+v", v)
	}
	if calls := f.Calls("views.open"); len(calls[0].Blocks.BlockSet) != 1 || calls[0].Fields.Get("trigger_id") != trig {
		t.Errorf("views.open call = %+v", calls[0])
	}
}

func TestUsersAndGroups(t *testing.T) {
	_, api := setup(t)
	ctx := t.Context()
	u, err := api.GetUserInfoContext(ctx, "U0ALICE001")
	if err != nil {
		t.Fatal(err)
	}
	if u.Profile.Email != "alice@example.com" || u.TZ != "Asia/Tokyo" || u.TZOffset != 9*3600 || u.RealName != "Alice A" {
		t.Errorf("users.info = %+v", u)
	}
	if _, err := api.GetUserInfoContext(ctx, "U0NOBODY01"); slackCode(err) != "user_not_found" {
		t.Errorf("unknown user: %v", err)
	}
	byMail, err := api.GetUserByEmailContext(ctx, "BOB@example.com")
	if err != nil || byMail.ID != "U0BOB00001" {
		t.Errorf("lookupByEmail = %+v, %v", byMail, err)
	}
	if _, err := api.GetUserByEmailContext(ctx, "eve@example.com"); slackCode(err) != "users_not_found" {
		t.Errorf("unknown email: %v", err)
	}
	members, err := api.GetUserGroupMembersContext(ctx, "S0ONCALL01")
	if err != nil || strings.Join(members, ",") != "U0ALICE001,U0BOB00001" {
		t.Errorf("usergroups.users.list = %v, %v", members, err)
	}
	if _, err := api.GetUserGroupMembersContext(ctx, "S0NOPE0001"); slackCode(err) != "no_such_subteam" {
		t.Errorf("unknown group: %v", err)
	}
}

func TestResponseURL(t *testing.T) {
	clk := newClock()
	f, api := setup(t, WithClock(clk.Now))
	ctx := t.Context()
	ch, ts, err := api.PostMessageContext(ctx, "C0OPS00001", slack.MsgOptionText("card", false))
	if err != nil {
		t.Fatal(err)
	}
	bound := f.ResponseURLForMessage("r1", ch, ts)
	if _, _, err := api.PostMessageContext(ctx, "", slack.MsgOptionReplaceOriginal(bound), slack.MsgOptionText("approved", false)); err != nil {
		t.Fatalf("replace_original: %v", err)
	}
	if m, _ := f.Message(ch, ts); m.Text != "approved" || m.Edits != 1 {
		t.Errorf("message after replace_original = %+v", m)
	}

	plain := f.ResponseURL("r2")
	for i := range ResponseURLLimit {
		if _, _, err := api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(plain, slack.ResponseTypeEphemeral), slack.MsgOptionText(fmt.Sprint(i), false)); err != nil {
			t.Fatalf("post %d: %v", i+1, err)
		}
	}
	_, _, err = api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(plain, slack.ResponseTypeEphemeral), slack.MsgOptionText("sixth", false))
	var sce slack.StatusCodeError
	if !errors.As(err, &sce) || sce.Code != http.StatusNotFound {
		t.Errorf("sixth post: %v, want 404", err)
	}
	posts := f.ResponsePosts("r2")
	if len(posts) != 6 || posts[0].Text != "0" || posts[0].Fields.Get("response_type") != "ephemeral" || posts[5].Error != "used_url" {
		t.Errorf("ResponsePosts = %+v", posts)
	}

	old := f.ResponseURL("r3")
	clk.Advance(ResponseURLLife + time.Second)
	if _, _, err := api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(old, slack.ResponseTypeInChannel), slack.MsgOptionText("late", false)); err == nil {
		t.Error("post to expired response_url succeeded")
	}
	if p := f.ResponsePosts("r3"); len(p) != 1 || p[0].Error != "expired_url" {
		t.Errorf("expired posts = %+v", p)
	}
}

func TestFaults(t *testing.T) {
	clk := newClock()
	f, api := setup(t, WithClock(clk.Now))
	ctx := t.Context()
	post := func(ch string) error {
		_, _, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("x", false))
		return err
	}

	f.RateLimit("chat.postMessage", 1, 1500*time.Millisecond)
	var rl *slack.RateLimitedError
	if err := post("C0OPS00001"); !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Errorf("rate limited post: %v, want RetryAfter 2s", err)
	}
	if err := post("C0OPS00001"); err != nil {
		t.Errorf("post after the rate limit ran out: %v", err)
	}

	// A window: every call answers 429 with the time left, until it ends.
	f.RateLimitFor("chat.postMessage", 3*time.Second)
	for _, want := range []time.Duration{3 * time.Second, 2 * time.Second, time.Second} {
		if err := post("C0OPS00001"); !errors.As(err, &rl) || rl.RetryAfter != want {
			t.Errorf("post in the window: %v, want RetryAfter %s", err, want)
		}
		clk.Advance(time.Second)
	}
	if err := post("C0OPS00001"); err != nil {
		t.Errorf("post after the window: %v", err)
	}

	f.FailNext("", 2, http.StatusServiceUnavailable)
	for i := range 2 {
		var sce slack.StatusCodeError
		if _, err := api.AuthTestContext(ctx); !errors.As(err, &sce) || sce.Code != http.StatusServiceUnavailable {
			t.Errorf("faulted call %d: %v", i, err)
		}
	}
	if _, err := api.AuthTestContext(ctx); err != nil {
		t.Errorf("call after 5xx ran out: %v", err)
	}

	f.AddChannel("C0OTHER001", "other")
	f.LimitChannelPosts(1)
	clk.Advance(time.Second)
	if err := post("C0OPS00001"); err != nil {
		t.Fatal(err)
	}
	if err := post("C0OPS00001"); !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Errorf("second post in the same second: %v", err)
	}
	if err := post("C0OTHER001"); err != nil {
		t.Errorf("other channel limited too: %v", err)
	}
	clk.Advance(time.Second)
	if err := post("C0OPS00001"); err != nil {
		t.Errorf("post a second later: %v", err)
	}

	f.SetLatency(time.Minute)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := api.AuthTestContext(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("call slower than its deadline: %v", err)
	}
	f.SetLatency(0)

	var failed int
	for _, c := range f.Calls("") {
		if !c.OK() {
			failed++
		}
	}
	if failed != 7 {
		t.Errorf("recorded %d failed calls, want 7:\n%s", failed, f.Dump(20))
	}
}

func TestWaitFor(t *testing.T) {
	f, api := setup(t)
	done := make(chan error, 1)
	go func() {
		_, _, err := api.PostMessageContext(context.Background(), "C0OPS00001", slack.MsgOptionText("async", false))
		done <- err
	}()
	f.WaitFor(t, 5*time.Second, func(f *Fake) bool { return len(f.Messages("C0OPS00001")) == 1 })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// fatalTB records Fatalf instead of failing the real test.
type fatalTB struct {
	testing.TB
	msg string
}

func (r *fatalTB) Helper() {}

func (r *fatalTB) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitForTimeoutDumpsCalls(t *testing.T) {
	f, api := setup(t)
	if _, _, err := api.PostMessageContext(t.Context(), "C0OPS00001", slack.MsgOptionText("seen", false)); err != nil {
		t.Fatal(err)
	}
	rec := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.WaitFor(rec, 30*time.Millisecond, func(*Fake) bool { return false })
	}()
	<-done
	if !strings.Contains(rec.msg, "not met within 30ms") || !strings.Contains(rec.msg, `chat.postMessage status=200`) {
		t.Errorf("timeout message = %q", rec.msg)
	}
}

// BeforeAnswer's hook sees each call, with its fields, before the fake
// records and answers it, and can hold it: here the users.info call waits
// until the hook lets it go.
func TestBeforeAnswer(t *testing.T) {
	f, api := setup(t)
	held := make(chan string, 1)
	release := make(chan struct{})
	f.BeforeAnswer(func(method string, fields url.Values) {
		if method != "users.info" {
			return
		}
		held <- fields.Get("user") + " recorded before the answer: " + fmt.Sprint(len(f.Calls(method)))
		<-release
	})
	done := make(chan error, 1)
	go func() {
		_, err := api.GetUserInfoContext(t.Context(), "U0ALICE001")
		done <- err
	}()
	if got, want := <-held, "U0ALICE001 recorded before the answer: 0"; got != want {
		t.Errorf("hook saw %q, want %q", got, want)
	}
	select {
	case err := <-done:
		t.Fatalf("users.info answered while the hook held it: %v", err)
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(f.Calls("users.info")); n != 1 {
		t.Errorf("users.info recorded %d times, want 1", n)
	}

	f.BeforeAnswer(nil)
	if _, err := api.AuthTestContext(t.Context()); err != nil {
		t.Errorf("auth.test without a hook: %v", err)
	}
}
