// Package socketfake is a fake Slack Socket Mode endpoint, for benchmarks
// and tests that need the real protocol on loopback.
//
// It speaks what an app's Socket Mode client sees of Slack: the Web API
// method apps.connections.open (app-level token in the Authorization
// header) answers a single-use ws:// URL on the same host; the WebSocket
// there receives a "hello" message, WebSocket pings (a client such as
// slack-go's socketmode reconnects when they stop), and the envelopes sent
// with Request:
//
//	{"envelope_id":"…","payload":{…},"type":"slash_commands","accepts_response_payload":true}
//
// The app acknowledges with {"envelope_id":"…","payload":…} (payload
// optional); Request matches the acknowledgement to its envelope and
// returns it stamped with the time its frame was read, so a benchmark can
// measure envelope → ack latency without counting its own scheduling.
//
// A Server is an http.Handler: serve it on a loopback listener (or
// httptest) and give the app <base URL>/api/ as its Web API URL. Requests
// for anything but apps.connections.open and the WebSocket go to the
// fallback handler (WithFallback), typically the fake Web API the app's
// other calls need.
package socketfake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Paths the Server answers itself.
const (
	// OpenPath is the Web API method apps.connections.open.
	OpenPath = "/api/apps.connections.open"
	// LinkPath is the WebSocket endpoint apps.connections.open hands out.
	LinkPath = "/link/"
)

// Envelope types Slack sends over Socket Mode.
const (
	TypeSlashCommands = "slash_commands"
	TypeInteractive   = "interactive"
	TypeEventsAPI     = "events_api"
)

// DefaultPingInterval is how often a connection is pinged unless
// WithPingInterval says otherwise: well inside the 30 s after which
// slack-go's client gives a silent connection up.
const DefaultPingInterval = 5 * time.Second

// maxFrame bounds an acknowledgement frame read from the app. Slack drops
// responses of 20 KB or more; anything far larger is not an ack.
const maxFrame = 1 << 20

// ErrNotConnected is returned by Request when no app is connected.
var ErrNotConnected = errors.New("socketfake: no Socket Mode connection")

// Envelope is one message Slack sends to the app.
type Envelope struct {
	// ID is the envelope_id the app acknowledges; unique among the
	// envelopes awaiting an ack.
	ID string
	// Type is TypeSlashCommands, TypeInteractive or TypeEventsAPI.
	Type string
	// Payload is the request itself: the slash command's fields, the
	// interaction callback or the Events API event callback, as JSON.
	Payload json.RawMessage
	// AcceptsResponsePayload says whether Slack would use a payload in the
	// ack (slash commands, view submissions, options; not button clicks).
	AcceptsResponsePayload bool
	// RetryAttempt and RetryReason describe a redelivery (events_api only).
	RetryAttempt int
	RetryReason  string
}

// Ack is the app's acknowledgement of one envelope.
type Ack struct {
	EnvelopeID string
	// Payload is the ack's payload; nil when it had none (or null).
	Payload json.RawMessage
	// Sent is when the envelope's frame was about to be written; Received
	// is when the ack's frame had been read.
	Sent, Received time.Time
}

// Stats counts what the Server has seen since it was created.
type Stats struct {
	// Opens counts apps.connections.open calls answered with a URL.
	Opens int
	// Connections counts WebSocket connections accepted (hello sent);
	// more than one for one client means it reconnected.
	Connections int
	// Open is the number of connections open now.
	Open int
	// Pings and Pongs count WebSocket pings sent and pongs received.
	Pings, Pongs int
	// Sent counts envelopes written; Acks the acknowledgements matched to
	// one of them.
	Sent, Acks int
	// UnmatchedAcks counts acks for no envelope awaiting one: an unknown
	// envelope_id, a second ack, or one that came after Request gave up.
	UnmatchedAcks int
	// BadFrames counts frames from the app that were not an ack (not
	// JSON, or no envelope_id).
	BadFrames int
}

// Option configures a Server.
type Option func(*Server)

// WithPingInterval sets how often each connection is pinged; zero or
// negative turns pings off (a slack-go client then reconnects after 30 s).
func WithPingInterval(d time.Duration) Option { return func(s *Server) { s.pingEvery = d } }

// WithFallback serves every request that is not apps.connections.open or
// the WebSocket with h (default: 404).
func WithFallback(h http.Handler) Option { return func(s *Server) { s.fallback = h } }

// WithAppID sets the app id reported in hello and the URL (default
// "A0SOCKFAKE").
func WithAppID(id string) Option { return func(s *Server) { s.appID = id } }

// Server is a fake Socket Mode endpoint. It is safe for concurrent use.
type Server struct {
	appToken  string
	appID     string
	pingEvery time.Duration
	fallback  http.Handler
	upgrader  websocket.Upgrader

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever stats or the connection change
	closed  bool
	stats   Stats
	tickets map[string]bool // issued and not yet used
	conns   map[*conn]struct{}
	current *conn // the newest open connection: where envelopes go
	pending map[string]*pending
	wg      sync.WaitGroup // connection goroutines
}

// conn is one accepted WebSocket.
type conn struct {
	ws      *websocket.Conn
	writeMu sync.Mutex // one writer at a time (gorilla/websocket's rule)
	done    chan struct{}
	hello   bool // hello sent: counted in Stats.Open, may receive envelopes (guarded by Server.mu)
}

// pending is an envelope awaiting its ack.
type pending struct {
	sent time.Time
	ack  chan Ack // buffered 1
}

// New returns a Server that accepts appToken (an app-level "xapp-" token)
// on apps.connections.open.
func New(appToken string, opts ...Option) (*Server, error) {
	if !strings.HasPrefix(appToken, "xapp-") {
		return nil, fmt.Errorf("socketfake: app token %q must start with xapp-", redact(appToken))
	}
	s := &Server{
		appToken:  appToken,
		appID:     "A0SOCKFAKE",
		pingEvery: DefaultPingInterval,
		fallback:  http.NotFoundHandler(),
		changed:   make(chan struct{}),
		tickets:   map[string]bool{},
		conns:     map[*conn]struct{}{},
		pending:   map[string]*pending{},
	}
	for _, o := range opts {
		o(s)
	}
	// Slack's clients send Origin: https://api.slack.com, which is not
	// this host; any origin is fine on loopback.
	s.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	return s, nil
}

func redact(token string) string {
	if len(token) > 5 {
		return token[:5] + "…"
	}
	return token
}

// ServeHTTP serves apps.connections.open, the WebSocket, and the fallback.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == OpenPath:
		s.serveOpen(w, r)
	case r.URL.Path == LinkPath:
		s.serveLink(w, r)
	default:
		s.fallback.ServeHTTP(w, r)
	}
}

// serveOpen answers apps.connections.open like Slack: the app-level token
// must come in the Authorization header.
func (s *Server) serveOpen(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || token == "":
		writeJSON(w, map[string]any{"ok": false, "error": "not_authed"})
		return
	case token != s.appToken:
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		writeJSON(w, map[string]any{"ok": false, "error": "internal_error"})
		return
	}
	ticket := hex.EncodeToString(b[:])
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeJSON(w, map[string]any{"ok": false, "error": "internal_error"})
		return
	}
	s.tickets[ticket] = true
	s.stats.Opens++
	s.notifyLocked()
	s.mu.Unlock()
	u := url.URL{Scheme: "ws", Host: r.Host, Path: LinkPath, RawQuery: url.Values{"ticket": {ticket}, "app_id": {s.appID}}.Encode()}
	writeJSON(w, map[string]any{"ok": true, "url": u.String()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

// serveLink accepts a WebSocket carrying a ticket apps.connections.open
// issued and nobody used yet, says hello and serves it until it closes.
func (s *Server) serveLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	valid := s.tickets[ticket] && !s.closed
	delete(s.tickets, ticket)
	s.mu.Unlock()
	if !valid {
		http.Error(w, "unknown, used or expired ticket", http.StatusUnauthorized)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the client
	}
	ws.SetReadLimit(maxFrame)
	c := &conn{ws: ws, done: make(chan struct{})}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.conns[c] = struct{}{}
	num := len(s.conns)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	// Registered before the hello is written, with the write lock held:
	// an app that has read the hello can be sent envelopes at once, and
	// none is written before the hello.
	hello := fmt.Sprintf(`{"type":"hello","num_connections":%d,"debug_info":{"host":"socketfake","build_number":1,"approximate_connection_time":18060},"connection_info":{"app_id":%q}}`, num, s.appID)
	c.writeMu.Lock()
	s.mu.Lock()
	c.hello = true
	s.current = c
	s.stats.Connections++
	s.stats.Open++
	s.notifyLocked()
	s.mu.Unlock()
	err = c.writeLocked([]byte(hello))
	c.writeMu.Unlock()
	if err != nil {
		s.drop(c)
		return
	}

	ws.SetPongHandler(func(string) error {
		s.mu.Lock()
		s.stats.Pongs++
		s.notifyLocked()
		s.mu.Unlock()
		return nil
	})
	if s.pingEvery > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.ping(c)
		}()
	}
	s.read(c) // until the connection ends
	s.drop(c)
}

// ping pings c every pingEvery until it closes.
func (s *Server) ping(c *conn) {
	tick := time.NewTicker(s.pingEvery)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		if err := c.ws.WriteControl(websocket.PingMessage, []byte(strconv.Itoa(n)), time.Now().Add(10*time.Second)); err != nil {
			return // the reader sees the broken connection too
		}
		s.mu.Lock()
		s.stats.Pings++
		s.notifyLocked()
		s.mu.Unlock()
	}
}

// read matches c's frames to pending envelopes until c fails or closes.
func (s *Server) read(c *conn) {
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		received := time.Now()
		var frame struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		s.mu.Lock()
		if json.Unmarshal(data, &frame) != nil || frame.EnvelopeID == "" {
			s.stats.BadFrames++
			s.notifyLocked()
			s.mu.Unlock()
			continue
		}
		p, ok := s.pending[frame.EnvelopeID]
		if !ok {
			s.stats.UnmatchedAcks++
			s.notifyLocked()
			s.mu.Unlock()
			continue
		}
		delete(s.pending, frame.EnvelopeID)
		s.stats.Acks++
		s.notifyLocked()
		s.mu.Unlock()
		payload := frame.Payload
		if string(payload) == "null" {
			payload = nil
		}
		p.ack <- Ack{EnvelopeID: frame.EnvelopeID, Payload: payload, Sent: p.sent, Received: received}
	}
}

// drop forgets c once it has ended.
func (s *Server) drop(c *conn) {
	_ = c.ws.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	close(c.done)
	if c.hello {
		s.stats.Open--
	}
	if s.current == c {
		// Envelopes go to another open connection, if the app has one.
		s.current = nil
		for other := range s.conns {
			if other.hello {
				s.current = other
			}
		}
	}
	s.notifyLocked()
}

func (c *conn) write(frame []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.writeLocked(frame)
}

// writeLocked writes one text frame. Caller holds c.writeMu.
func (c *conn) writeLocked(frame []byte) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	return c.ws.WriteMessage(websocket.TextMessage, frame)
}

// Request sends env to the connected app and waits for its ack, the end
// of ctx, or the end of the connection it was sent on. The ack's payload
// is returned as sent; checking it is the caller's business.
func (s *Server) Request(ctx context.Context, env Envelope) (Ack, error) {
	frame, err := AppendEnvelope(nil, env)
	if err != nil {
		return Ack{}, err
	}
	p := &pending{ack: make(chan Ack, 1), sent: time.Now()}
	s.mu.Lock()
	c := s.current
	switch {
	case s.closed || c == nil:
		s.mu.Unlock()
		return Ack{}, ErrNotConnected
	case s.pending[env.ID] != nil:
		s.mu.Unlock()
		return Ack{}, fmt.Errorf("socketfake: envelope %s is already awaiting an ack", env.ID)
	}
	s.pending[env.ID] = p
	s.mu.Unlock()

	if err := c.write(frame); err != nil {
		s.forget(env.ID)
		return Ack{}, fmt.Errorf("socketfake: send envelope %s: %w", env.ID, err)
	}
	s.mu.Lock()
	s.stats.Sent++
	s.notifyLocked()
	s.mu.Unlock()

	select {
	case a := <-p.ack:
		return a, nil
	case <-ctx.Done():
		if !s.forget(env.ID) {
			return <-p.ack, nil // matched while giving up: it is on its way
		}
		return Ack{}, fmt.Errorf("socketfake: envelope %s: no ack: %w", env.ID, ctx.Err())
	case <-c.done:
		if !s.forget(env.ID) {
			return <-p.ack, nil
		}
		return Ack{}, fmt.Errorf("socketfake: envelope %s: connection closed before its ack", env.ID)
	}
}

// forget stops waiting for id's ack; false if it was matched already.
func (s *Server) forget(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[id]; !ok {
		return false
	}
	delete(s.pending, id)
	return true
}

// AppendEnvelope appends env's wire form to dst: the JSON object Slack
// sends. The payload is copied as is once checked to be valid JSON.
func AppendEnvelope(dst []byte, env Envelope) ([]byte, error) {
	switch {
	case env.ID == "":
		return dst, errors.New("socketfake: envelope without an id")
	case env.Type != TypeSlashCommands && env.Type != TypeInteractive && env.Type != TypeEventsAPI:
		return dst, fmt.Errorf("socketfake: envelope %s: unknown type %q (want %s, %s or %s)", env.ID, env.Type, TypeSlashCommands, TypeInteractive, TypeEventsAPI)
	case !json.Valid(env.Payload):
		return dst, fmt.Errorf("socketfake: envelope %s: payload is not valid JSON", env.ID)
	}
	id, err := json.Marshal(env.ID)
	if err != nil {
		return dst, fmt.Errorf("socketfake: envelope id: %w", err)
	}
	dst = append(dst, `{"envelope_id":`...)
	dst = append(dst, id...)
	dst = append(dst, `,"payload":`...)
	dst = append(dst, env.Payload...)
	dst = append(dst, `,"type":"`...)
	dst = append(dst, env.Type...)
	dst = append(dst, `","accepts_response_payload":`...)
	dst = strconv.AppendBool(dst, env.AcceptsResponsePayload)
	if env.Type == TypeEventsAPI {
		reason, err := json.Marshal(env.RetryReason)
		if err != nil {
			return dst, fmt.Errorf("socketfake: retry reason: %w", err)
		}
		dst = append(dst, `,"retry_attempt":`...)
		dst = strconv.AppendInt(dst, int64(env.RetryAttempt), 10)
		dst = append(dst, `,"retry_reason":`...)
		dst = append(dst, reason...)
	}
	return append(dst, '}'), nil
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// WaitFor blocks until cond holds for the Server's Stats (checked at once
// and after every change) or ctx ends.
func (s *Server) WaitFor(ctx context.Context, cond func(Stats) bool) error {
	for {
		s.mu.Lock()
		ok, changed := cond(s.stats), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("socketfake: waiting (last %+v): %w", s.Stats(), ctx.Err())
		}
	}
}

// notifyLocked wakes WaitFor callers. Caller holds s.mu.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Close closes every connection (pending Requests fail), refuses new ones
// and waits for the connections' goroutines. The listener serving the
// Server is the caller's to close.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.ws.Close() // its reader ends and drops it
	}
	s.wg.Wait()
}
