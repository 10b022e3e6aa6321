// Package slackfake is a fake Slack Web API server for tests. It answers the
// methods tokken uses the way Slack does, as seen by a
// github.com/slack-go/slack client created with
// slack.OptionAPIURL(fake.URL()+"/api/"): same encodings (form fields with
// JSON-in-form blocks, JSON bodies for views.*), same ids and ts shapes, and
// ok:false with Slack's error codes where Slack would refuse.
//
// Every call is recorded (method, token, fields, parsed blocks and
// attachments), and a model of the workspace is kept: channels, messages by
// channel and ts (chat.update replaces, chat.delete removes), thread replies,
// ephemerals and DMs by user, opened views, response_url posts. Fault
// switches inject HTTP 429 with Retry-After, a per-channel posting limit,
// HTTP 5xx and latency. WaitFor lets a test block until the model satisfies a
// condition without sleeping; BeforeAnswer lets it see, or hold, each call
// before it is answered. SlashCommand and Interaction build the signed
// requests Slack sends to the app, with trigger ids and response_urls that
// this fake then honours.
//
// Typical use:
//
//	f := slackfake.New(t)
//	f.AddChannel("C0OPS00001", "ops")
//	f.AddUser(slackfake.User{ID: "U0ALICE001", Name: "alice", Email: "alice@example.com", TZ: "Asia/Tokyo"})
//	// point the code under test at f.APIURL() with token f.Token(), run it, then:
//	f.WaitFor(t, 5*time.Second, func(f *slackfake.Fake) bool { return len(f.DMs("U0ALICE001")) == 1 })
//
// One Fake serves one test; it is safe for concurrent use and is closed by
// the test's Cleanup.
package slackfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// Identity of the fake workspace and its bot, as auth.test reports them.
const (
	DefaultToken = "xoxb-tokken-test"
	TeamID       = "T0TOKKEN01"
	TeamName     = "tokken-test"
	BotUserID    = "U0TOKKENBOT"
	BotID        = "B0TOKKENBOT"
	AppID        = "A0TOKKEN001"
)

// TriggerLife is how long Slack honours a trigger_id.
const TriggerLife = 3 * time.Second

// ResponseURLLimit and ResponseURLLife bound a response_url: Slack accepts
// at most five posts within thirty minutes.
const (
	ResponseURLLimit = 5
	ResponseURLLife  = 30 * time.Minute
)

// Option configures a Fake.
type Option func(*Fake)

// WithClock replaces time.Now for ts values, trigger and response_url expiry
// and the per-channel posting limit. now is called from the server's
// goroutines, so it must be safe for concurrent use.
func WithClock(now func() time.Time) Option { return func(f *Fake) { f.now = now } }

// Call is one recorded request, including refused and faulted ones.
type Call struct {
	// Method is the Web API method ("chat.postMessage"), or "response_url"
	// for a post to a ResponseURL.
	Method string
	// Token is the token the caller sent (form field or bearer header).
	Token string
	// Fields holds every form field; for JSON bodies, every top-level member
	// (strings as is, other values as their JSON text).
	Fields url.Values
	// Channel is the resolved channel id the call concerned, if any.
	Channel string
	// TS is the message the call concerned: the ts sent, or the one assigned
	// to a new message.
	TS       string
	ThreadTS string
	Text     string
	// User is the user field (ephemeral recipient, users.info subject).
	User string
	// Blocks and Attachments are parsed from the request (view blocks for
	// views.*).
	Blocks      slack.Blocks
	Attachments []slack.Attachment
	// ResponseURLID names the response_url posted to.
	ResponseURLID string
	// Status is the HTTP status answered; Error the Slack error code when
	// the answer was ok:false (or the body of a refused response_url post).
	Status int
	Error  string
	At     time.Time
}

// OK reports whether Slack would have accepted the call.
func (c Call) OK() bool { return c.Status == http.StatusOK && c.Error == "" }

// Message is the current state of one message in the model.
type Message struct {
	Channel     string
	TS          string
	ThreadTS    string // empty for a top-level message
	User        string // author: the bot
	Text        string
	Blocks      slack.Blocks
	Attachments []slack.Attachment
	// Edits counts chat.update and replace_original calls applied.
	Edits int

	rawBlocks      json.RawMessage
	rawAttachments json.RawMessage
}

// Shown is what a reader sees of m, one piece a line, for assertions: its
// text, then each attachment's colour, fallback, and the text of its
// section and context blocks.
func (m Message) Shown() string {
	var b strings.Builder
	b.WriteString(m.Text)
	for _, att := range m.Attachments {
		b.WriteString("\n" + att.Color + "\n" + att.Fallback)
		for _, bl := range att.Blocks.BlockSet {
			switch x := bl.(type) {
			case *slack.SectionBlock:
				if x.Text != nil {
					b.WriteString("\n" + x.Text.Text)
				}
			case *slack.ContextBlock:
				for _, el := range x.ContextElements.Elements {
					if t, ok := el.(*slack.TextBlockObject); ok {
						b.WriteString("\n" + t.Text)
					}
				}
			}
		}
	}
	return b.String()
}

// User is a workspace member registered with AddUser.
type User struct {
	ID       string
	Name     string
	RealName string
	Email    string
	TZ       string // IANA name, e.g. "Asia/Tokyo"
	IsBot    bool
	Deleted  bool
	// TeamID is the user's own team: TeamID (the fake workspace) when
	// empty; another for a Slack Connect user of another organisation.
	TeamID string
	// Stranger is users.info's is_stranger: a user of a team not
	// connected to the fake workspace.
	Stranger bool
}

// Fake is a running fake Slack Web API.
type Fake struct {
	srv *httptest.Server

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every recorded call
	token   string
	secret  string
	now     func() time.Time
	lastTS  time.Time
	seq     int

	calls      []Call
	channels   map[string]string // id -> name
	outside    map[string]bool   // channels the bot is not a member of
	archived   map[string]bool   // archived channels
	byName     map[string]string // name -> id
	messages   map[string]map[string]*Message
	order      map[string][]string // channel -> ts in posting order (top level and replies)
	ephemerals map[string][]Message
	dmByUser   map[string]string
	userByDM   map[string]string
	users      map[string]User
	groups     map[string][]string
	views      []*View
	triggers   map[string]*trigger
	responses  map[string]*responseURL

	faults faults
	hook   func(method string, fields url.Values) // BeforeAnswer
}

// New starts a fake Slack API server; it is closed when tb ends.
func New(tb testing.TB, opts ...Option) *Fake {
	tb.Helper()
	f := &Fake{
		changed:    make(chan struct{}),
		token:      DefaultToken,
		secret:     DefaultSigningSecret,
		now:        time.Now,
		channels:   map[string]string{},
		outside:    map[string]bool{},
		archived:   map[string]bool{},
		byName:     map[string]string{},
		messages:   map[string]map[string]*Message{},
		order:      map[string][]string{},
		ephemerals: map[string][]Message{},
		dmByUser:   map[string]string{},
		userByDM:   map[string]string{},
		users:      map[string]User{},
		groups:     map[string][]string{},
		triggers:   map[string]*trigger{},
		responses:  map[string]*responseURL{},
		faults:     newFaults(),
	}
	for _, o := range opts {
		o(f)
	}
	f.users[BotUserID] = User{ID: BotUserID, Name: "tokken", RealName: "tokken", IsBot: true}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	tb.Cleanup(f.srv.Close)
	return f
}

// URL is the server's base URL; the Web API lives under URL()+"/api/".
func (f *Fake) URL() string { return f.srv.URL }

// APIURL is the value for slack.OptionAPIURL and SLACK_API_URL.
func (f *Fake) APIURL() string { return f.srv.URL + "/api/" }

// Token is the bot token the fake accepts.
func (f *Fake) Token() string { return f.token }

// Client returns a slack-go client aimed at the fake with its token.
func (f *Fake) Client() *slack.Client {
	return slack.New(f.token, slack.OptionAPIURL(f.APIURL()), slack.OptionHTTPClient(f.srv.Client()))
}

// AddChannel registers a public channel; posting to an unknown channel
// answers channel_not_found. name is without '#'.
func (f *Fake) AddChannel(id, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.channels[id] = name
	if name != "" {
		f.byName[name] = id
	}
}

// SetBotMember says whether the bot is a member of channel (registered
// with AddChannel, which makes it one). Outside it, chat.postMessage
// answers not_in_channel and conversations.info reports is_member false;
// putting it back is what /invite @tokken does.
func (f *Fake) SetBotMember(channel string, member bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outside[channel] = !member
}

// ArchiveChannel archives channel: chat.postMessage answers is_archived and
// conversations.info reports is_archived true.
func (f *Fake) ArchiveChannel(channel string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.archived[channel] = true
}

// AddUser registers a workspace member for users.info, users.lookupByEmail,
// conversations.open and chat.postEphemeral.
func (f *Fake) AddUser(u User) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[u.ID] = u
}

// DeactivateUser marks user id deactivated, as a workspace admin does:
// users.info says deleted, and DMs to the user are refused (user_disabled).
func (f *Fake) DeactivateUser(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.users[id]
	u.Deleted = true
	f.users[id] = u
}

// AddUserGroup registers a user group (subteam) and its members.
func (f *Fake) AddUserGroup(id string, members ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups[id] = append([]string(nil), members...)
}

// BeforeAnswer sets hook, called with the method and fields of every Web
// API call before the fake answers and records it (nil: none). hook runs on
// the call's own server goroutine without the fake's lock, so it may call
// any accessor and may block: a test that holds calls until all of a batch
// have arrived shows that its client made them concurrently.
func (f *Fake) BeforeAnswer(hook func(method string, fields url.Values)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = hook
}

// Calls returns the recorded calls of method in order, or every call when
// method is "". Refused and faulted attempts are included: check Call.OK.
func (f *Fake) Calls(method string) []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Call
	for _, c := range f.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Message returns the current state of the message at channel and ts.
func (f *Fake) Message(channel, ts string) (Message, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.messages[channel][ts]
	if !ok {
		return Message{}, false
	}
	return *m, true
}

// Messages returns the live messages of channel (top level and replies) in
// posting order.
func (f *Fake) Messages(channel string) []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.messagesLocked(channel, func(*Message) bool { return true })
}

// Thread returns the live replies to the message at channel and ts, in
// posting order (the parent is not included).
func (f *Fake) Thread(channel, ts string) []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.messagesLocked(channel, func(m *Message) bool { return m.ThreadTS == ts && m.TS != ts })
}

// DMs returns the live messages in the bot's direct-message channel with
// user, in posting order.
func (f *Fake) DMs(user string) []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, ok := f.dmByUser[user]
	if !ok {
		return nil
	}
	return f.messagesLocked(ch, func(*Message) bool { return true })
}

// DMChannel returns the id of the bot's DM channel with user, if opened.
func (f *Fake) DMChannel(user string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, ok := f.dmByUser[user]
	return ch, ok
}

// Ephemerals returns the ephemeral messages shown to user, in order.
func (f *Fake) Ephemerals(user string) []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Message(nil), f.ephemerals[user]...)
}

func (f *Fake) messagesLocked(channel string, keep func(*Message) bool) []Message {
	var out []Message
	for _, ts := range f.order[channel] {
		if m, ok := f.messages[channel][ts]; ok && keep(m) {
			out = append(out, *m)
		}
	}
	return out
}

// WaitFor blocks until cond holds, re-evaluating it after every recorded
// call, and fails tb with the most recent calls if timeout passes first.
// cond runs without the fake's lock held, so it may call any accessor.
func (f *Fake) WaitFor(tb testing.TB, timeout time.Duration, cond func(*Fake) bool) {
	tb.Helper()
	if !f.Until(timeout, cond) {
		tb.Fatalf("slackfake: condition not met within %s; recent calls:\n%s", timeout, f.Dump(20))
	}
}

// Until waits until cond holds, re-checking it after every recorded call,
// and reports whether it did within timeout (WaitFor for callers that are
// not tests, such as the benchmark harness).
func (f *Fake) Until(timeout time.Duration, cond func(*Fake) bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		f.mu.Lock()
		changed := f.changed
		f.mu.Unlock()
		if cond(f) {
			return true
		}
		select {
		case <-changed:
		case <-timer.C:
			return cond(f)
		}
	}
}

// Dump formats the last n calls, one a line, for failure messages.
func (f *Fake) Dump(n int) string {
	calls := f.Calls("")
	if len(calls) > n {
		calls = calls[len(calls)-n:]
	}
	if len(calls) == 0 {
		return "  (no calls)"
	}
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "  %s %s status=%d", c.At.Format("15:04:05.000"), c.Method, c.Status)
		if c.Error != "" {
			fmt.Fprintf(&b, " error=%s", c.Error)
		}
		if c.Channel != "" {
			fmt.Fprintf(&b, " channel=%s", c.Channel)
		}
		if c.TS != "" {
			fmt.Fprintf(&b, " ts=%s", c.TS)
		}
		if c.ThreadTS != "" {
			fmt.Fprintf(&b, " thread_ts=%s", c.ThreadTS)
		}
		if c.Text != "" {
			fmt.Fprintf(&b, " text=%q", truncate(c.Text, 60))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// record appends c and wakes every WaitFor. Caller holds f.mu.
func (f *Fake) record(c Call) {
	f.calls = append(f.calls, c)
	close(f.changed)
	f.changed = make(chan struct{})
}

// nextTS returns a Slack-shaped ts ("1732245600.000100") strictly greater
// than every earlier one. Caller holds f.mu.
func (f *Fake) nextTS() string {
	t := f.now().Truncate(time.Microsecond)
	if !t.After(f.lastTS) {
		t = f.lastTS.Add(100 * time.Microsecond)
	}
	f.lastTS = t
	return fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000)
}

// nextID returns a fresh Slack-shaped id with the given prefix letter.
// Caller holds f.mu.
func (f *Fake) nextID(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s%09d", prefix, f.seq)
}
