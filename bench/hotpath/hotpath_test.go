package hotpath

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bench/loadgen"
	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/httpapi"
	"github.com/tokken/tokken/handlers/slacksig"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/infra/localqueue"
	"github.com/tokken/tokken/infra/logctx"
)

var secret = []byte("8f742231b10e8888abcd99yyyzzz85a5")

var (
	command     = loadgen.Payload{Kind: loadgen.KindCommand, Command: "/access", Text: "help"}
	interaction = loadgen.Payload{Kind: loadgen.KindInteraction, ActionID: "bench.click", Value: "x"}
)

func builder(tb testing.TB, p loadgen.Payload) *loadgen.Builder {
	tb.Helper()
	b, err := loadgen.NewBuilder(p, secret)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// signed returns a fresh signed request number seq and its body.
func signed(tb testing.TB, b *loadgen.Builder, seq uint64) (*http.Request, []byte) {
	tb.Helper()
	r, err := b.Request("http://127.0.0.1", seq, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	body := b.Body(seq)
	return r, body
}

func BenchmarkVerify(b *testing.B) {
	r, body := signed(b, builder(b, command), 1)
	v := slacksig.Verifier{Secret: secret}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(r.Header, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSlashCommand(b *testing.B) {
	_, body := signed(b, builder(b, command), 1)
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/slack/commands", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if _, err := slack.SlashCommandParse(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseInteraction is tokken's parse of a click (the form, then
// httpapi.ParseInteraction); handlers/httpapi's own BenchmarkParseInteraction
// compares the JSON part with slack-go's decoder.
func BenchmarkParseInteraction(b *testing.B) {
	_, body := signed(b, builder(b, interaction), 1)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/slack/interactions", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if err := r.ParseForm(); err != nil {
			b.Fatal(err)
		}
		if _, err := httpapi.ParseInteraction([]byte(r.PostForm.Get("payload"))); err != nil {
			b.Fatal(err)
		}
	}
}

// sharedStore hides the bbolt store's ProcessExclusive: the Router then
// records every delivery in the store, as it does on DynamoDB.
type sharedStore struct{ bot.Store }

// server is tokken's HTTP surface as `serve` builds it (httpapi over a
// Router with a bbolt store and the local queue), with an /access help
// command and a click handler that does nothing, logging JSON as tokken
// does (to io.Discard). With shared, the Router treats the store as shared
// between processes and writes a delivery record per request (what the
// Lambda ingress does with DynamoDB), here a bbolt commit with its fsync.
func server(b *testing.B, shared bool) http.Handler {
	b.Helper()
	log := slog.New(logctx.NewJSON(io.Discard, nil, logctx.Fields(httpapi.RequestID)...)).With("app", "tokken", "role", "all")
	store, err := boltstore.Open(filepath.Join(b.TempDir(), "bench.db"), boltstore.WithLogger(log))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	q, err := localqueue.New(store, func(context.Context, bot.Job) error { return nil }, localqueue.Options{Log: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = q.Close(context.Background()) })
	var routed bot.Store = store
	if shared {
		routed = sharedStore{store}
	}
	router, err := httpapi.NewRouter(httpapi.RouterDeps{Store: routed, Queue: q, Log: log})
	if err != nil {
		b.Fatal(err)
	}
	router.HandleCommand("/access", func(context.Context, slack.SlashCommand) (*slack.Msg, error) {
		return &slack.Msg{Text: "*/access* — time-boxed AWS access, approved in Slack."}, nil
	})
	router.HandleInteraction("bench.click", func(context.Context, slack.InteractionCallback) (any, error) {
		return nil, nil
	})
	return httpapi.New(httpapi.Deps{Router: router, Verifier: slacksig.Verifier{Secret: secret}, Log: log})
}

// serve sends signed requests of p to h and reports, besides time and
// allocations, the process CPU time per request (cpu-ns/op, from
// getrusage): with a shared store, wall time is mostly the fsync wait, CPU
// is what the request costs the machine. Building and signing the request
// (a few µs) is included in both.
func serve(b *testing.B, h http.Handler, p loadgen.Payload) {
	bld := builder(b, p)
	b.ReportAllocs()
	before := cpuTime(b)
	var seq uint64
	for b.Loop() {
		seq++
		r, _ := signed(b, bld, seq)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N), "cpu-ns/op")
}

// cpuTime is this process's user + system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAckCommand is tokken's whole in-process ack of /access help as
// `tokken serve` runs it: bbolt is process-exclusive, so the delivery is
// remembered in memory.
func BenchmarkAckCommand(b *testing.B) { serve(b, server(b, false), command) }

// BenchmarkAckClick is tokken's ack of a click whose handler does
// nothing: what remains is verification, slack-go's parse of the payload
// and the in-memory delivery record that makes a repeated click harmless.
func BenchmarkAckClick(b *testing.B) { serve(b, server(b, false), interaction) }

// BenchmarkAckCommandSharedStore is BenchmarkAckCommand with the delivery
// recorded in the store (a bbolt commit and fdatasync per request), as a
// store shared between processes requires: the cost the in-memory record
// removes from `tokken serve`.
func BenchmarkAckCommandSharedStore(b *testing.B) { serve(b, server(b, true), command) }

// BenchmarkAckClickSharedStore is BenchmarkAckClick with the delivery
// recorded in the store.
func BenchmarkAckClickSharedStore(b *testing.B) { serve(b, server(b, true), interaction) }

// BenchmarkAckFloor only verifies, like bench/cmd/floor.
func BenchmarkAckFloor(b *testing.B) {
	h := slacksig.Verifier{Secret: secret}.Middleware(slog.New(slog.NewJSONHandler(io.Discard, nil)),
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	serve(b, h, command)
}
