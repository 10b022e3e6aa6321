package slackapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/testkit/slackfake"
)

const (
	ops   = "C0OPS00001"
	alice = "U0ALICE001"
)

// fakeTime is both the fake's clock and the client's sleeper: a wait moves
// the clock instead of spending real time, and is recorded.
type fakeTime struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (ft *fakeTime) Now() time.Time {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.now
}

func (ft *fakeTime) Sleep(ctx context.Context, d time.Duration) error {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.waits = append(ft.waits, d)
	ft.now = ft.now.Add(d)
	return ctx.Err()
}

func (ft *fakeTime) Waits() []time.Duration {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return append([]time.Duration(nil), ft.waits...)
}

type env struct {
	fake *slackfake.Fake
	c    *Client
	time *fakeTime
	logs *bytes.Buffer
}

// newEnv starts a fake Slack with one channel and user and a client aimed
// at it whose waits only advance the fake's clock.
func newEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	ft := &fakeTime{now: time.Unix(1732245600, 0)}
	f := slackfake.New(t, slackfake.WithClock(ft.Now))
	f.AddChannel(ops, "ops")
	f.AddUser(slackfake.User{ID: alice, Name: "alice", RealName: "Alice A", Email: "alice@example.com", TZ: "Asia/Tokyo"})
	logs := &bytes.Buffer{}
	opts := Options{
		APIURL:      f.APIURL(),
		Logger:      slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		BaseBackoff: 100 * time.Millisecond,
		Sleep:       ft.Sleep,
	}
	if mod != nil {
		mod(&opts)
	}
	return &env{fake: f, c: New(f.Token(), opts), time: ft, logs: logs}
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func sectionText(t *testing.T, b slack.Blocks) string {
	t.Helper()
	if len(b.BlockSet) != 1 {
		t.Fatalf("want one block, got %d", len(b.BlockSet))
	}
	s, ok := b.BlockSet[0].(*slack.SectionBlock)
	if !ok {
		t.Fatalf("block is %T", b.BlockSet[0])
	}
	return s.Text.Text
}

func TestMessageLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()

	ref, err := e.c.PostMessage(ctx, "#ops", Message{Text: "access request", Blocks: []slack.Block{section("*pending*")}})
	if err != nil {
		t.Fatal(err)
	}
	if ref.Channel != ops || ref.TS == "" {
		t.Fatalf("ref = %+v", ref)
	}
	reply, err := e.c.PostMessage(ctx, ops, Message{Text: "approved by bob", ThreadTS: ref.TS})
	if err != nil {
		t.Fatal(err)
	}
	if th := e.fake.Thread(ops, ref.TS); len(th) != 1 || th[0].TS != reply.TS {
		t.Errorf("thread = %+v", th)
	}

	if err := e.c.UpdateMessage(ctx, ref, Message{Text: "granted", Blocks: []slack.Block{section("*granted*")}}); err != nil {
		t.Fatal(err)
	}
	m, _ := e.fake.Message(ops, ref.TS)
	if m.Text != "granted" || sectionText(t, m.Blocks) != "*granted*" || m.Edits != 1 {
		t.Errorf("after update: %+v", m)
	}
	// An update replaces the message: no blocks means the old ones go.
	if err := e.c.UpdateMessage(ctx, ref, Message{Text: "expired"}); err != nil {
		t.Fatal(err)
	}
	if m, _ := e.fake.Message(ops, ref.TS); m.Text != "expired" || len(m.Blocks.BlockSet) != 0 {
		t.Errorf("after text-only update: %+v", m)
	}
	if err := e.c.UpdateMessage(ctx, MessageRef{Channel: ops, TS: "1.000001"}, Message{Text: "x"}); ErrorCode(err) != "message_not_found" {
		t.Errorf("update unknown ts: %v", err)
	}

	if err := e.c.PostEphemeral(ctx, ops, alice, Message{Text: "only you"}); err != nil {
		t.Fatal(err)
	}
	if eph := e.fake.Ephemerals(alice); len(eph) != 1 || eph[0].Text != "only you" {
		t.Errorf("ephemerals = %+v", eph)
	}

	if err := e.c.DeleteMessage(ctx, reply); err != nil {
		t.Fatal(err)
	}
	if th := e.fake.Thread(ops, ref.TS); len(th) != 0 {
		t.Errorf("thread after delete = %+v", th)
	}
}

func TestDM(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	for _, text := range []string{"your credentials", "they expire in 5 minutes"} {
		ref, err := e.c.DM(ctx, alice, Message{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		if ch, _ := e.fake.DMChannel(alice); ref.Channel != ch {
			t.Errorf("DM posted to %s, want DM channel %s", ref.Channel, ch)
		}
	}
	if dms := e.fake.DMs(alice); len(dms) != 2 || dms[1].Text != "they expire in 5 minutes" {
		t.Errorf("DMs = %+v", dms)
	}
	if n := len(e.fake.Calls("conversations.open")); n != 1 {
		t.Errorf("conversations.open called %d times, want 1 (channel remembered)", n)
	}
	if _, err := e.c.DM(ctx, "U0NOBODY01", Message{Text: "x"}); ErrorCode(err) != "user_not_found" {
		t.Errorf("DM to unknown user: %v", err)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name        string
		fault       func(testing.TB, *slackfake.Fake)
		channel     string
		wantErr     bool
		wantCalls   int
		wantWaits   []time.Duration // exact waits (rate limits); nil to skip
		wantBackoff int             // number of jittered backoff waits
		wantRL      int64
	}{
		{
			name:      "429 honours Retry-After exactly",
			fault:     func(_ testing.TB, f *slackfake.Fake) { f.RateLimit("chat.postMessage", 2, 3*time.Second) },
			channel:   ops,
			wantCalls: 3, wantWaits: []time.Duration{3 * time.Second, 3 * time.Second}, wantRL: 2,
		},
		{
			name: "per-channel limit waits one second",
			fault: func(t testing.TB, f *slackfake.Fake) {
				f.LimitChannelPosts(1)
				// Another poster used this second's quota of the channel.
				if _, _, err := f.Client().PostMessage(ops, slack.MsgOptionText("first", false)); err != nil {
					t.Fatal(err)
				}
			},
			channel:   ops,
			wantCalls: 2, wantWaits: []time.Duration{time.Second}, wantRL: 1,
		},
		{
			name: "5xx retried with backoff",
			fault: func(_ testing.TB, f *slackfake.Fake) {
				f.FailNext("chat.postMessage", 2, http.StatusServiceUnavailable)
			},
			channel:   ops,
			wantCalls: 3, wantBackoff: 2,
		},
		{
			name: "5xx gives up after MaxAttempts",
			fault: func(_ testing.TB, f *slackfake.Fake) {
				f.FailNext("chat.postMessage", 10, http.StatusInternalServerError)
			},
			channel: ops,
			wantErr: true, wantCalls: DefaultMaxAttempts, wantBackoff: DefaultMaxAttempts - 1,
		},
		{
			name:    "Retry-After beyond the limit fails at once",
			fault:   func(_ testing.TB, f *slackfake.Fake) { f.RateLimit("chat.postMessage", 1, time.Hour) },
			channel: ops,
			wantErr: true, wantCalls: 1, wantWaits: []time.Duration{},
		},
		{
			name:    "Slack error codes are not retried",
			channel: "C0NOPE0001",
			wantErr: true, wantCalls: 1, wantWaits: []time.Duration{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var limited []string
			e := newEnv(t, func(o *Options) {
				o.OnRateLimited = func(method string, _ time.Duration) { limited = append(limited, method) }
			})
			if tc.fault != nil {
				tc.fault(t, e.fake)
			}
			before := len(e.fake.Calls("chat.postMessage"))
			_, err := e.c.PostMessage(t.Context(), tc.channel, Message{Text: "hello"})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got := len(e.fake.Calls("chat.postMessage")) - before; got != tc.wantCalls {
				t.Errorf("attempts = %d, want %d\n%s", got, tc.wantCalls, e.fake.Dump(10))
			}
			waits := e.time.Waits()
			if tc.wantWaits != nil && !equalDurations(waits, tc.wantWaits) {
				t.Errorf("waits = %v, want %v", waits, tc.wantWaits)
			}
			if tc.wantBackoff > 0 {
				if len(waits) != tc.wantBackoff {
					t.Fatalf("waits = %v, want %d backoffs", waits, tc.wantBackoff)
				}
				for i, w := range waits {
					hi := 100 * time.Millisecond << i
					if w < hi/2 || w > hi {
						t.Errorf("backoff %d = %s, want in [%s, %s]", i, w, hi/2, hi)
					}
				}
			}
			if got := e.c.RateLimitWaits(); got != tc.wantRL || len(limited) != int(tc.wantRL) {
				t.Errorf("RateLimitWaits = %d, callbacks %v, want %d", got, limited, tc.wantRL)
			}
			if !tc.wantErr {
				if msgs := e.fake.Messages(tc.channel); len(msgs) == 0 || msgs[len(msgs)-1].Text != "hello" {
					t.Errorf("message not delivered: %+v", msgs)
				}
			}
		})
	}
}

// TestRateLimitWindowIsShared: a 429 holds back the next calls of the same
// method to the same channel, whoever makes them, until its Retry-After
// has passed; other channels and methods go ahead.
func TestRateLimitWindowIsShared(t *testing.T) {
	const other = "C0OTHER001"
	tests := []struct {
		name       string
		retryAfter time.Duration
		then       func(*env) error
		wantCalls  int // chat.postMessage calls the second post makes
		wantWaits  []time.Duration
		wantErr    bool
	}{
		{
			name: "same channel waits the rest of the window", retryAfter: 3 * time.Second,
			then:      func(e *env) error { _, err := e.c.PostMessage(t.Context(), ops, Message{Text: "second"}); return err },
			wantCalls: 1, wantWaits: []time.Duration{3 * time.Second},
		},
		{
			name: "another channel does not wait", retryAfter: 3 * time.Second,
			then:      func(e *env) error { _, err := e.c.PostMessage(t.Context(), other, Message{Text: "second"}); return err },
			wantCalls: 1, wantWaits: []time.Duration{},
		},
		{
			name: "another method does not wait", retryAfter: 3 * time.Second,
			then:      func(e *env) error { return e.c.PostEphemeral(t.Context(), ops, alice, Message{Text: "only you"}) },
			wantCalls: 0, wantWaits: []time.Duration{},
		},
		{
			name: "a window beyond MaxRetryAfter fails without calling", retryAfter: time.Hour,
			then:      func(e *env) error { _, err := e.c.PostMessage(t.Context(), ops, Message{Text: "second"}); return err },
			wantCalls: 0, wantWaits: []time.Duration{}, wantErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e *env
			e = newEnv(t, func(o *Options) {
				o.MaxAttempts = 1 // the first post gives up on its 429 and leaves the window open
				o.Now = func() time.Time { return e.time.Now() }
			})
			e.fake.AddChannel(other, "other")
			e.fake.RateLimit("chat.postMessage", 1, tc.retryAfter)
			if _, err := e.c.PostMessage(t.Context(), ops, Message{Text: "first"}); ErrorCode(err) != "ratelimited" {
				t.Fatalf("first post: %v, want a rate limit", err)
			}
			before := len(e.fake.Calls("chat.postMessage"))
			err := tc.then(e)
			if (err != nil) != tc.wantErr {
				t.Fatalf("second call: %v, wantErr %v", err, tc.wantErr)
			}
			if got := len(e.fake.Calls("chat.postMessage")) - before; got != tc.wantCalls {
				t.Errorf("second call made %d chat.postMessage calls, want %d", got, tc.wantCalls)
			}
			if waits := e.time.Waits(); !equalDurations(waits, tc.wantWaits) {
				t.Errorf("waits = %v, want %v", waits, tc.wantWaits)
			}
		})
	}
}

// TestRateLimitedUntil: the window a 429 opens is reported for its method
// and channel until it ends, and for no other.
func TestRateLimitedUntil(t *testing.T) {
	var e *env
	e = newEnv(t, func(o *Options) {
		o.MaxAttempts = 1
		o.Now = func() time.Time { return e.time.Now() }
	})
	if got := e.c.RateLimitedUntil("chat.postMessage", ops); !got.IsZero() {
		t.Fatalf("before any 429: window until %v", got)
	}
	e.fake.RateLimit("chat.postMessage", 1, 3*time.Second)
	start := e.time.Now()
	if _, err := e.c.PostMessage(t.Context(), ops, Message{Text: "first"}); ErrorCode(err) != "ratelimited" {
		t.Fatalf("first post: %v, want a rate limit", err)
	}
	if got, want := e.c.RateLimitedUntil("chat.postMessage", ops), start.Add(3*time.Second); !got.Equal(want) {
		t.Errorf("after a 429 with Retry-After 3: window until %v, want %v", got, want)
	}
	if got := e.c.RateLimitedUntil("chat.postMessage", "C0OTHER001"); !got.IsZero() {
		t.Errorf("another channel: window until %v, want none", got)
	}
	if got := e.c.RateLimitedUntil("chat.update", ops); !got.IsZero() {
		t.Errorf("another method: window until %v, want none", got)
	}
	_ = e.c.opts.Sleep(t.Context(), 3*time.Second)
	if got := e.c.RateLimitedUntil("chat.postMessage", ops); !got.IsZero() {
		t.Errorf("after the window: until %v, want none", got)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRetryAfterRealWait uses the real sleeper: the retry must not come
// sooner than Retry-After.
func TestRetryAfterRealWait(t *testing.T) {
	f := slackfake.New(t)
	f.AddChannel(ops, "ops")
	c := New(f.Token(), Options{APIURL: f.APIURL(), Logger: slog.New(slog.DiscardHandler)})
	f.RateLimit("chat.postMessage", 1, time.Second)
	start := time.Now()
	if _, err := c.PostMessage(t.Context(), ops, Message{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	calls := f.Calls("chat.postMessage")
	if len(calls) != 2 {
		t.Fatalf("calls = %d", len(calls))
	}
	if gap := calls[1].At.Sub(calls[0].At); gap < time.Second {
		t.Errorf("retried after %s, Retry-After was 1s", gap)
	}
	if time.Since(start) < time.Second {
		t.Errorf("PostMessage returned after %s", time.Since(start))
	}
}

func TestWaitStopsWithContext(t *testing.T) {
	f := slackfake.New(t)
	f.AddChannel(ops, "ops")
	c := New(f.Token(), Options{APIURL: f.APIURL(), Logger: slog.New(slog.DiscardHandler)})
	f.RateLimit("chat.postMessage", 1, 20*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := c.PostMessage(ctx, ops, Message{Text: "hi"})
	var rl *slack.RateLimitedError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &rl) {
		t.Errorf("err = %v, want deadline exceeded wrapping the rate limit", err)
	}
	if n := len(f.Calls("chat.postMessage")); n != 1 {
		t.Errorf("calls = %d, want 1", n)
	}
}

func TestNetworkErrorsRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // connection refused from now on
	ft := &fakeTime{}
	c := New("xoxb-x", Options{APIURL: srv.URL + "/api/", Logger: slog.New(slog.DiscardHandler), Sleep: ft.Sleep, MaxAttempts: 3})
	if _, err := c.AuthTest(t.Context()); err == nil {
		t.Fatal("AuthTest against a closed server succeeded")
	}
	if n := len(ft.Waits()); n != 2 {
		t.Errorf("waits = %d, want 2 (3 attempts)", n)
	}
}

func modal(title string) slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:   slack.VTModal,
		Title:  slack.NewTextBlockObject(slack.PlainTextType, title, false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{section("reason?")}},
	}
}

func TestViews(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()

	v, err := e.c.OpenView(ctx, e.fake.TriggerID(alice), modal("Request access"))
	if err != nil {
		t.Fatal(err)
	}
	if v.ID == "" || v.Title.Text != "Request access" {
		t.Errorf("view = %+v", v)
	}
	pushed, err := e.c.PushView(ctx, e.fake.TriggerID(alice), modal("Confirm"))
	if err != nil || pushed.RootViewID != v.ID {
		t.Errorf("PushView = %+v, %v", pushed, err)
	}
	upd, err := e.c.UpdateView(ctx, v.ID, v.Hash, modal("Submitted"))
	if err != nil || upd.Title.Text != "Submitted" {
		t.Fatalf("UpdateView = %+v, %v", upd, err)
	}
	if _, err := e.c.UpdateView(ctx, v.ID, v.Hash, modal("again")); ErrorCode(err) != "hash_conflict" {
		t.Errorf("stale hash: %v", err)
	}

	used := e.fake.TriggerID(alice)
	if _, err := e.c.OpenView(ctx, used, modal("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.OpenView(ctx, used, modal("b")); ErrorCode(err) != "exchanged_trigger_id" {
		t.Errorf("reused trigger: %v", err)
	}
}

func TestOpenViewRetriesOnlyWithinTriggerLife(t *testing.T) {
	tests := []struct {
		name      string
		fault     func(*slackfake.Fake)
		wantErr   bool
		wantCalls int
		wantWaits int
	}{
		{"5xx retried quickly", func(f *slackfake.Fake) { f.FailNext("views.open", 1, http.StatusBadGateway) }, false, 2, 1},
		{"Retry-After past the trigger fails fast", func(f *slackfake.Fake) { f.RateLimit("views.open", 1, 3*time.Second) }, true, 1, 0},
		{"expired trigger not retried", nil, true, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			trig := e.fake.TriggerID(alice)
			if tc.fault != nil {
				tc.fault(e.fake)
			} else {
				e.fake.ExpireTrigger(trig)
			}
			_, err := e.c.OpenView(t.Context(), trig, modal("x"))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if n := len(e.fake.Calls("views.open")); n != tc.wantCalls {
				t.Errorf("calls = %d, want %d", n, tc.wantCalls)
			}
			if n := len(e.time.Waits()); n != tc.wantWaits {
				t.Errorf("waits = %v, want %d", e.time.Waits(), tc.wantWaits)
			}
		})
	}
}

func TestUsers(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	e.fake.AddUserGroup("S0APPROVE1", alice, "U0BOB00001")

	u, err := e.c.UserInfo(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "alice@example.com" || u.TZ != "Asia/Tokyo" || u.TZOffset != 9*3600 || u.RealName != "Alice A" {
		t.Errorf("UserInfo = %+v", u)
	}
	if got := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).In(u.Location()).Hour(); got != 9 {
		t.Errorf("Location: midnight UTC is %d:00 for alice, want 9", got)
	}
	if _, err := e.c.UserInfo(ctx, "U0NOBODY01"); ErrorCode(err) != "user_not_found" {
		t.Errorf("unknown user: %v", err)
	}
	byMail, err := e.c.UserByEmail(ctx, "alice@example.com")
	if err != nil || byMail.ID != alice {
		t.Errorf("UserByEmail = %+v, %v", byMail, err)
	}
	members, err := e.c.UserGroupMembers(ctx, "S0APPROVE1")
	if err != nil || strings.Join(members, ",") != alice+",U0BOB00001" {
		t.Errorf("UserGroupMembers = %v, %v", members, err)
	}
}

func TestLocationFallsBackToOffset(t *testing.T) {
	u := User{TZ: "Not/AZone", TZLabel: "X", TZOffset: -5 * 3600}
	if _, off := time.Unix(0, 0).In(u.Location()).Zone(); off != -5*3600 {
		t.Errorf("offset = %d", off)
	}
}

func TestPostToResponseURL(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	card, err := e.c.PostMessage(ctx, ops, Message{Text: "approve?"})
	if err != nil {
		t.Fatal(err)
	}
	u := e.fake.ResponseURLForMessage("r1", card.Channel, card.TS)
	if err := e.c.PostToResponseURL(ctx, u, Response{Text: "approved", Blocks: []slack.Block{section("done")}, ReplaceOriginal: true}); err != nil {
		t.Fatal(err)
	}
	if m, _ := e.fake.Message(ops, card.TS); m.Text != "approved" || sectionText(t, m.Blocks) != "done" {
		t.Errorf("card after replace_original = %+v", m)
	}
	if err := e.c.PostToResponseURL(ctx, u, Response{Text: "seen", InChannel: true, ThreadTS: card.TS}); err != nil {
		t.Fatal(err)
	}
	if th := e.fake.Thread(ops, card.TS); len(th) != 1 || th[0].Text != "seen" {
		t.Errorf("thread = %+v", th)
	}
	posts := e.fake.ResponsePosts("r1")
	if len(posts) != 2 || posts[0].Fields.Get("replace_original") != "true" || posts[1].Fields.Get("response_type") != "in_channel" {
		t.Errorf("posts = %+v", posts)
	}

	// Slack's 5-post limit: the sixth is refused and not retried.
	plain := e.fake.ResponseURL("r2")
	for range slackfake.ResponseURLLimit {
		if err := e.c.PostToResponseURL(ctx, plain, Response{Text: "progress"}); err != nil {
			t.Fatal(err)
		}
	}
	err = e.c.PostToResponseURL(ctx, plain, Response{Text: "too many"})
	var sce slack.StatusCodeError
	if !errors.As(err, &sce) || sce.Code != http.StatusNotFound {
		t.Errorf("sixth post: %v", err)
	}
	if n := len(e.fake.ResponsePosts("r2")); n != slackfake.ResponseURLLimit+1 {
		t.Errorf("posts = %d, want %d (no retry of a 404)", n, slackfake.ResponseURLLimit+1)
	}

	for _, bad := range []string{"https://evil.example.com/commands/1", "http://hooks.slack.com/x", "not a url"} {
		if err := e.c.PostToResponseURL(ctx, bad, Response{Text: "x"}); err == nil {
			t.Errorf("PostToResponseURL(%q) accepted", bad)
		}
	}
	if err := e.c.checkResponseURL("https://hooks.slack.com/actions/T1/2/abc"); err != nil {
		t.Errorf("Slack's own response_url refused: %v", err)
	}
}

func TestLogsNeverHoldMessageContent(t *testing.T) {
	e := newEnv(t, nil)
	const secret = "AKIAEXAMPLESECRET"
	e.fake.FailNext("chat.postMessage", 1, http.StatusInternalServerError)
	e.fake.RateLimit("conversations.open", 1, time.Second)
	if _, err := e.c.DM(t.Context(), alice, Message{Text: secret, Blocks: []slack.Block{section(secret)}}); err != nil {
		t.Fatal(err)
	}
	u := e.fake.ResponseURL("secret-path-xyz")
	e.fake.FailNext("response_url", 1, http.StatusServiceUnavailable)
	if err := e.c.PostToResponseURL(t.Context(), u, Response{Text: secret}); err != nil {
		t.Fatal(err)
	}
	logs := e.logs.String()
	for _, leak := range []string{secret, "secret-path-xyz"} {
		if strings.Contains(logs, leak) {
			t.Errorf("logs contain %q:\n%s", leak, logs)
		}
	}
	for _, want := range []string{`"method":"chat.postMessage"`, `"status":"500"`, `"msg":"slack rate limited"`, `"method":"conversations.open"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

// TestConnectionsToSlackAreBounded: the default HTTP client opens at most
// MaxConnsPerHost connections to Slack however many calls run at once
// (after-ack answers to a burst of clicks do), and reuses them.
func TestConnectionsToSlackAreBounded(t *testing.T) {
	var conns atomic.Int64
	arrived := make(chan struct{}, 3*MaxConnsPerHost)
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := New("xoxb-test", Options{APIURL: srv.URL + "/api/"})

	const calls = 3 * MaxConnsPerHost
	errs := make(chan error, calls)
	for range calls {
		go func() { errs <- c.PostEphemeral(context.Background(), ops, alice, Message{Text: "hi"}) }()
	}
	for range MaxConnsPerHost { // the server holds as many calls as there may be connections
		<-arrived
	}
	close(release)
	for range calls {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n > MaxConnsPerHost {
		t.Errorf("%d calls at once opened %d connections, want at most %d", calls, n, MaxConnsPerHost)
	}
}
