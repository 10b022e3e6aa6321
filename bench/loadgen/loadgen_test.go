package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/handlers/slacksig"
)

var secret = []byte("bench-secret")

func TestBuilderRequestsVerifyAndParse(t *testing.T) {
	tests := []struct {
		name  string
		p     Payload
		check func(t *testing.T, r *http.Request)
	}{
		{"command", Payload{Kind: KindCommand, Command: "/access", Text: "help"}, func(t *testing.T, r *http.Request) {
			cmd, err := slack.SlashCommandParse(r)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if cmd.Command != "/access" || cmd.Text != "help" || cmd.UserID != UserID || cmd.ChannelID != ChannelID || cmd.TriggerID == "" || cmd.ResponseURL != DefaultResponseURL {
				t.Errorf("command = %+v", cmd)
			}
		}},
		{"interaction", Payload{Kind: KindInteraction, ActionID: "alert.ack", Value: "bench:none"}, func(t *testing.T, r *http.Request) {
			ic, err := slack.InteractionCallbackParse(r)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if ic.Type != slack.InteractionTypeBlockActions || ic.User.ID != UserID || ic.Channel.ID != ChannelID || ic.Container.ChannelID != ChannelID || ic.TriggerID == "" {
				t.Errorf("interaction = %+v", ic)
			}
			if n := len(ic.ActionCallback.BlockActions); n != 1 {
				t.Fatalf("%d block actions, want 1", n)
			}
			if a := ic.ActionCallback.BlockActions[0]; a.ActionID != "alert.ack" || a.Value != "bench:none" {
				t.Errorf("action = %+v", a)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBuilder(tt.p, secret)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			triggers := map[string]bool{}
			for seq := uint64(1); seq <= 3; seq++ {
				r, err := b.Request("http://127.0.0.1:1/", seq, now)
				if err != nil {
					t.Fatal(err)
				}
				if r.URL.Path != tt.p.Kind.Path() {
					t.Errorf("path = %q, want %q", r.URL.Path, tt.p.Kind.Path())
				}
				body, _ := io.ReadAll(r.Body)
				if err := (slacksig.Verifier{Secret: secret, Now: func() time.Time { return now }}).Verify(r.Header, body); err != nil {
					t.Fatalf("signature does not verify: %v", err)
				}
				if err := (slacksig.Verifier{Secret: []byte("other")}).Verify(r.Header, body); err == nil {
					t.Fatal("signature verifies with another secret")
				}
				r.Body = io.NopCloser(strings.NewReader(string(body)))
				tt.check(t, r)
				if err := r.ParseForm(); err != nil {
					t.Fatal(err)
				}
				triggers[triggerOf(t, tt.p.Kind, r)] = true
			}
			if len(triggers) != 3 {
				t.Errorf("trigger ids %v: want 3 distinct", triggers)
			}
		})
	}
}

func triggerOf(t *testing.T, k Kind, r *http.Request) string {
	t.Helper()
	if k == KindCommand {
		return r.PostForm.Get("trigger_id")
	}
	ic, err := slack.InteractionCallbackParse(r)
	if err != nil {
		t.Fatal(err)
	}
	return ic.TriggerID
}

func TestNewBuilderRefuses(t *testing.T) {
	tests := []struct {
		name   string
		p      Payload
		secret []byte
	}{
		{"no secret", Payload{Kind: KindCommand, Command: "/access"}, nil},
		{"command without slash", Payload{Kind: KindCommand, Command: "access"}, secret},
		{"interaction without action", Payload{Kind: KindInteraction}, secret},
		{"unknown kind", Payload{Kind: "event"}, secret},
	}
	for _, tt := range tests {
		if _, err := NewBuilder(tt.p, tt.secret); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    CPUTime
		wantErr bool
	}{
		{"plain", "1234 (tokken) S 1 1234 1234 0 -1 4194560 900 0 0 0 250 31 0 0 20 0 9 0 100 0 0",
			CPUTime{User: 2500 * time.Millisecond, System: 310 * time.Millisecond}, false},
		{"name with spaces and parens", "77 (a) b (c) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0",
			CPUTime{User: 70 * time.Millisecond, System: 30 * time.Millisecond}, false},
		{"no name", "1234 tokken S 1", CPUTime{}, true},
		{"truncated", "1234 (tokken) S 1 2 3", CPUTime{}, true},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 ab 3 0 0", CPUTime{}, true},
	}
	for _, tt := range tests {
		got, err := ParseStat([]byte(tt.stat))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, wantErr %v", tt.name, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestReadCPUOfThisProcess(t *testing.T) {
	// Burn some CPU so at least one tick is accounted.
	deadline := time.Now().Add(50 * time.Millisecond)
	for n := 0; time.Now().Before(deadline); n++ {
		_ = strings.Repeat("x", n%64)
	}
	c, err := ReadCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if c.Total() <= 0 {
		t.Errorf("cpu time %+v after busy work, want > 0", c)
	}
	if _, err := ReadCPU(-1); err == nil {
		t.Error("ReadCPU(-1) succeeded")
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 100, 4 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 90, 90 * time.Millisecond},
		{ms(hundred...), 0, 1 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := Percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("Percentile(%d values, %v) = %v, want %v", len(tt.sorted), tt.p, got, tt.want)
		}
	}
}

// verifyingServer answers 200 "ok" to requests whose signature verifies
// and whose trigger_id it has not seen, 401 otherwise; it counts them.
type verifyingServer struct {
	mu       sync.Mutex
	triggers map[string]bool
	ok, bad  atomic.Int64
	inflight atomic.Int64
	peak     atomic.Int64
	status   int // answered to good requests (default 200)
}

func (s *verifyingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	body, _ := io.ReadAll(r.Body)
	if err := (slacksig.Verifier{Secret: secret}).Verify(r.Header, body); err != nil {
		s.bad.Add(1)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	if err := r.ParseForm(); err != nil {
		s.bad.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	dup := s.triggers[r.PostForm.Get("trigger_id")]
	s.triggers[r.PostForm.Get("trigger_id")] = true
	s.mu.Unlock()
	if dup {
		s.bad.Add(1)
		http.Error(w, "duplicate trigger", http.StatusConflict)
		return
	}
	s.ok.Add(1)
	if s.status != 0 {
		w.WriteHeader(s.status)
	}
	_, _ = io.WriteString(w, "ok")
}

func TestRun(t *testing.T) {
	cmd := Payload{Kind: KindCommand, Command: "/access", Text: "help"}
	tests := []struct {
		name       string
		cfg        Config
		status     int
		wantReq    int // -1: any positive count
		wantErrors int // -1: equal to the request count
		wantSent   int64
	}{
		{"closed loop count", Config{Payload: cmd, Requests: 40, Warmup: 5, Concurrency: 4, Expect: "ok"}, 0, 40, 0, 45},
		{"open loop count", Config{Payload: cmd, Requests: 20, Rate: 2000, Concurrency: 2}, 0, 20, 0, 20},
		{"duration bound", Config{Payload: cmd, Duration: 100 * time.Millisecond, Concurrency: 2, Rate: 200}, 0, -1, 0, -1},
		{"server errors", Config{Payload: cmd, Requests: 10, Concurrency: 2}, http.StatusInternalServerError, 10, -1, 10},
		{"expectation missed", Config{Payload: cmd, Requests: 10, Expect: "help text"}, 0, 10, -1, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &verifyingServer{triggers: map[string]bool{}, status: tt.status}
			srv := httptest.NewServer(s)
			defer srv.Close()
			cfg := tt.cfg
			cfg.BaseURL, cfg.Secret, cfg.PID = srv.URL, secret, os.Getpid()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if s.bad.Load() != 0 {
				t.Errorf("server refused %d requests (bad signature or repeated trigger)", s.bad.Load())
			}
			if tt.wantReq >= 0 && res.Requests != tt.wantReq {
				t.Errorf("Requests = %d, want %d", res.Requests, tt.wantReq)
			}
			if tt.wantReq < 0 && (res.Requests == 0 || res.Requests > 25) {
				t.Errorf("Requests = %d, want 1…25 at 200/s for 100 ms", res.Requests)
			}
			wantErr := tt.wantErrors
			if wantErr < 0 {
				wantErr = res.Requests
			}
			if res.Errors != wantErr {
				t.Errorf("Errors = %d, want %d (first: %s)", res.Errors, wantErr, res.FirstError)
			}
			if wantErr > 0 && res.FirstError == "" {
				t.Error("no FirstError")
			}
			if tt.wantSent >= 0 && s.ok.Load() != tt.wantSent {
				t.Errorf("server answered %d, want %d (warm-up included)", s.ok.Load(), tt.wantSent)
			}
			if p := s.peak.Load(); p > int64(res.Concurrency) {
				t.Errorf("peak in flight %d > concurrency %d", p, res.Concurrency)
			}
			if !(res.P50 > 0 && res.P50 <= res.P90 && res.P90 <= res.P99 && res.P99 <= res.Max) {
				t.Errorf("percentiles not ordered: %v %v %v %v", res.P50, res.P90, res.P99, res.Max)
			}
			if res.RPS <= 0 || res.Elapsed <= 0 {
				t.Errorf("RPS %v, elapsed %v", res.RPS, res.Elapsed)
			}
			if res.CPUPerRequest != res.ServerCPU.Total()/time.Duration(res.Requests) {
				t.Errorf("CPUPerRequest %v != %v / %d", res.CPUPerRequest, res.ServerCPU.Total(), res.Requests)
			}
		})
	}
}

func TestRunOpenLoopPaces(t *testing.T) {
	s := &verifyingServer{triggers: map[string]bool{}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	// 10 requests at 100/s are due over 90 ms: the run cannot be shorter.
	res, err := Run(context.Background(), Config{BaseURL: srv.URL, Secret: secret, Payload: Payload{Kind: KindCommand, Command: "/x"}, Requests: 10, Rate: 100, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Elapsed < 90*time.Millisecond {
		t.Errorf("10 requests at 100/s took %v, want ≥ 90ms", res.Elapsed)
	}
}

// answerNow answers every request at once.
func answerNow(context.Context, uint64) (time.Time, error) { return time.Now(), nil }

func TestRunRefuses(t *testing.T) {
	cmd := Payload{Kind: KindCommand, Command: "/x"}
	const base = "http://127.0.0.1:1"
	tests := []struct {
		name string
		cfg  Config
		want string // in the error
	}{
		{"http without a bound", Config{BaseURL: base, Secret: secret, Payload: cmd}, "stop by itself"},
		{"http without a base URL", Config{Secret: secret, Payload: cmd, Requests: 1}, "no base URL"},
		{"send without a bound", Config{Send: answerNow}, "stop by itself"},
		{"negative count", Config{Send: answerNow, Requests: -1}, "stop by itself"},
		{"negative duration", Config{Send: answerNow, Requests: 1, Duration: -1}, "negative bound"},
		{"negative warm-up", Config{Send: answerNow, Requests: 1, Warmup: -1}, "negative bound"},
		{"negative rate", Config{Send: answerNow, Requests: 1, Rate: -1}, "negative bound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A run wrongly accepted would not stop by itself.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := Run(ctx, tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want a refusal (%q)", err, tt.want)
			}
		})
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"http", Config{BaseURL: "http://127.0.0.1:1", Secret: secret, Payload: Payload{Kind: KindCommand, Command: "/x"}, Requests: 5}},
		{"send", Config{Send: answerNow, Requests: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := Run(ctx, tt.cfg); err == nil {
				t.Error("a cancelled run reported no error")
			}
		})
	}
}

// TestRunSend runs the loop with Config.Send instead of HTTP: no base URL,
// secret or client, latency measured to when Send says the answer arrived.
func TestRunSend(t *testing.T) {
	kind := Payload{Kind: KindInteraction}
	tests := []struct {
		name       string
		cfg        Config
		send       SendFunc // nil: answerNow
		wantReq    int
		wantErrors int
		wantSent   int // warm-up included; -1: any number
		check      func(t *testing.T, res Result)
	}{
		{name: "closed loop", cfg: Config{Requests: 50, Warmup: 5, Concurrency: 4}, wantReq: 50, wantSent: 55},
		{name: "open loop", cfg: Config{Requests: 20, Rate: 1000, Concurrency: 2}, wantReq: 20, wantSent: 20},
		{
			name: "errors counted", cfg: Config{Requests: 30, Concurrency: 3},
			send: func(_ context.Context, seq uint64) (time.Time, error) {
				if seq%3 == 0 {
					return time.Time{}, errors.New("wrong ack")
				}
				return time.Now(), nil
			},
			wantReq: 30, wantErrors: 10, wantSent: 30,
			check: func(t *testing.T, res Result) {
				if res.FirstError != "wrong ack" {
					t.Errorf("FirstError %q, want %q", res.FirstError, "wrong ack")
				}
			},
		},
		{
			// An answer read an hour from now: the latency is that hour,
			// not the time Send took to return.
			name: "latency measured to answered", cfg: Config{Requests: 10, Concurrency: 2},
			send:    func(context.Context, uint64) (time.Time, error) { return time.Now().Add(time.Hour), nil },
			wantReq: 10, wantSent: 10,
			check: func(t *testing.T, res Result) {
				if res.P50 < time.Hour {
					t.Errorf("p50 %s, want ≥ 1h (measured to answered)", res.P50)
				}
			},
		},
		{
			name: "zero answered: latency to return", cfg: Config{Requests: 10},
			send:    func(context.Context, uint64) (time.Time, error) { return time.Time{}, nil },
			wantReq: 10, wantSent: 10,
			check: func(t *testing.T, res Result) {
				if res.P50 <= 0 || res.Max >= time.Minute {
					t.Errorf("p50 %s max %s, want measured to when Send returned", res.P50, res.Max)
				}
			},
		},
		{
			name: "failed: latency to return", cfg: Config{Requests: 10},
			send: func(context.Context, uint64) (time.Time, error) {
				return time.Now().Add(time.Hour), errors.New("bad ack")
			},
			wantReq: 10, wantErrors: 10, wantSent: 10,
			check: func(t *testing.T, res Result) {
				if res.Max >= time.Minute {
					t.Errorf("max %s, want measured to when Send returned", res.Max)
				}
			},
		},
		{
			// A server that answers one request at a time, 5 ms each,
			// cannot keep up with 1,000/s: latency counted from when each
			// request was due grows with the queue instead of staying at
			// 5 ms.
			name: "open loop counts queueing", cfg: Config{Requests: 40, Rate: 1000, Concurrency: 1},
			send: func() SendFunc {
				var one sync.Mutex
				return func(ctx context.Context, _ uint64) (time.Time, error) {
					one.Lock()
					defer one.Unlock()
					timer := time.NewTimer(5 * time.Millisecond) // the server's service time
					defer timer.Stop()
					select {
					case <-timer.C:
					case <-ctx.Done():
						return time.Time{}, ctx.Err()
					}
					return time.Now(), nil
				}
			}(),
			wantReq: 40, wantSent: 40,
			check: func(t *testing.T, res Result) {
				// The last request was due at 39 ms and answered after 40×5 ms.
				if res.Max < 150*time.Millisecond {
					t.Errorf("max latency %s: queueing behind a slow server was not counted", res.Max)
				}
			},
		},
		{
			// Requests never answered are cut off by the run's end and
			// not counted.
			name: "duration bound", cfg: Config{Duration: 50 * time.Millisecond, Concurrency: 2},
			send: func(ctx context.Context, _ uint64) (time.Time, error) {
				<-ctx.Done()
				return time.Time{}, fmt.Errorf("no ack: %w", ctx.Err())
			},
			wantReq: 0, wantErrors: 0, wantSent: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			send := tt.send
			if send == nil {
				send = answerNow
			}
			var (
				mu             sync.Mutex
				sent           = map[uint64]bool{}
				inflight, peak atomic.Int64
			)
			cfg := tt.cfg
			cfg.Payload, cfg.Target, cfg.PID = kind, "socket mode interactive", os.Getpid()
			cfg.Send = func(ctx context.Context, seq uint64) (time.Time, error) {
				n := inflight.Add(1)
				defer inflight.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				mu.Lock()
				dup := sent[seq]
				sent[seq] = true
				mu.Unlock()
				if dup {
					t.Errorf("request %d sent twice", seq)
				}
				return send(ctx, seq)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != tt.wantReq || res.Errors != tt.wantErrors {
				t.Errorf("requests %d errors %d (first %q), want %d %d", res.Requests, res.Errors, res.FirstError, tt.wantReq, tt.wantErrors)
			}
			if tt.wantSent >= 0 {
				// seq runs on from the warm-up: 1…wantSent, each once.
				for seq := range sent {
					if seq < 1 || seq > uint64(tt.wantSent) {
						t.Errorf("seq %d sent, want 1…%d", seq, tt.wantSent)
					}
				}
				if len(sent) != tt.wantSent {
					t.Errorf("%d requests sent, want %d (warm-up included)", len(sent), tt.wantSent)
				}
			}
			if res.Kind != kind.Kind || res.URL != cfg.Target {
				t.Errorf("result names %s %q, want %s %q", res.Kind, res.URL, kind.Kind, cfg.Target)
			}
			if p := peak.Load(); p > int64(res.Concurrency) {
				t.Errorf("peak in flight %d > concurrency %d", p, res.Concurrency)
			}
			if res.Requests > 0 && !(res.P50 <= res.P90 && res.P90 <= res.P99 && res.P99 <= res.Max) {
				t.Errorf("percentiles not ordered: %v %v %v %v", res.P50, res.P90, res.P99, res.Max)
			}
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		outcomes []outcome
		elapsed  time.Duration
		cpu      time.Duration
		want     Result
	}{
		{name: "nothing", want: Result{}},
		{
			name: "ten, one failed",
			outcomes: []outcome{
				{latency: 5 * ms}, {latency: 1 * ms}, {latency: 2 * ms}, {latency: 3 * ms}, {latency: 4 * ms},
				{latency: 10 * ms, err: errors.New("no ack")}, {latency: 6 * ms}, {latency: 7 * ms}, {latency: 8 * ms}, {latency: 9 * ms},
			},
			elapsed: 2 * time.Second, cpu: 50 * ms,
			want: Result{Requests: 10, Errors: 1, FirstError: "no ack", P50: 5 * ms, P90: 9 * ms, P99: 10 * ms, Max: 10 * ms,
				RPS: 5, CPUPerRequest: 5 * ms},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Result{Elapsed: tt.elapsed, ServerCPU: CPUTime{User: tt.cpu}}
			summarize(&res, tt.outcomes)
			got := res
			got.Elapsed, got.ServerCPU = 0, CPUTime{}
			if got != tt.want {
				t.Errorf("summarize = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestTriggerIDsDifferAcrossBuilders(t *testing.T) {
	// A server remembers trigger ids (tokken deduplicates clicks on them):
	// a second run against it must not repeat the first run's ids.
	p := Payload{Kind: KindCommand, Command: "/access"}
	a, err := NewBuilder(p, secret)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBuilder(p, secret)
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Body(1)) == string(b.Body(1)) {
		t.Errorf("two builders made the same body for seq 1: %s", a.Body(1))
	}
}
