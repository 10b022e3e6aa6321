package localqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/boltstore"
)

func openStore(t *testing.T, path string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path, boltstore.WithSweepInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newStore(t *testing.T) *boltstore.Store {
	return openStore(t, filepath.Join(t.TempDir(), "q.db"))
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newQueue(t *testing.T, s bot.Store, h bot.JobHandler, opt Options) *Queue {
	t.Helper()
	if opt.Log == nil {
		opt.Log = quiet()
	}
	if opt.BaseDelay == 0 {
		opt.BaseDelay = time.Millisecond
	}
	q, err := New(s, h, opt)
	if err != nil {
		t.Fatal(err)
	}
	q.Start()
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	return q
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the handler")
		panic("unreachable")
	}
}

func count(t *testing.T, s bot.Store, kind string) []bot.Record {
	t.Helper()
	recs, err := s.List(context.Background(), kind, bot.KeyRange{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestRunsJobAndForgetsIt(t *testing.T) {
	s := newStore(t)
	ran := make(chan bot.Job, 1)
	q := newQueue(t, s, func(_ context.Context, j bot.Job) error { ran <- j; return nil }, Options{})
	j, _ := bot.NewJob("j1", "test.echo", map[string]int{"n": 1})
	if err := q.Enqueue(ctxT(t), j); err != nil {
		t.Fatal(err)
	}
	got := recv(t, ran)
	if got.ID != "j1" || got.Kind != "test.echo" || string(got.Payload) != `{"n":1}` {
		t.Errorf("handler got %+v", got)
	}
	if err := q.Idle(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(count(t, s, KindJob)); n != 0 {
		t.Errorf("%d job records left after success", n)
	}
}

func TestEnqueueIsDurableBeforeReturning(t *testing.T) {
	s := newStore(t)
	release := make(chan struct{})
	q := newQueue(t, s, func(ctx context.Context, _ bot.Job) error { <-release; return nil }, Options{Workers: 1})
	defer close(release)
	for _, id := range []string{"a", "b"} {
		if err := q.Enqueue(ctxT(t), bot.Job{ID: id, Kind: "k"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctxT(t), KindJob, id); err != nil {
			t.Errorf("job %s not in the store when Enqueue returned: %v", id, err)
		}
	}
}

func TestDuplicatePendingIDIsNoOp(t *testing.T) {
	s := newStore(t)
	started := make(chan string, 4)
	release := make(chan struct{})
	var mu sync.Mutex
	runs := map[string]int{}
	q := newQueue(t, s, func(_ context.Context, j bot.Job) error {
		mu.Lock()
		runs[j.ID]++
		mu.Unlock()
		started <- j.ID
		<-release
		return nil
	}, Options{Workers: 2})
	ctx := ctxT(t)
	if err := q.Enqueue(ctx, bot.Job{ID: "dup", Kind: "k"}); err != nil {
		t.Fatal(err)
	}
	recv(t, started) // running now: still pending
	if err := q.Enqueue(ctx, bot.Job{ID: "dup", Kind: "k"}); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := q.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	if runs["dup"] != 1 {
		t.Errorf("job ran %d times, want 1", runs["dup"])
	}
	// Once finished, the same ID may run again (it is a new delivery).
	if err := q.Enqueue(ctx, bot.Job{ID: "dup", Kind: "k"}); err != nil {
		t.Fatal(err)
	}
	recv(t, started)
	if err := q.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	if runs["dup"] != 2 {
		t.Errorf("job ran %d times after re-enqueue, want 2", runs["dup"])
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	s := newStore(t)
	attempts := make(chan int, 10)
	n := 0
	q := newQueue(t, s, func(_ context.Context, j bot.Job) error {
		n++
		attempts <- n
		if n < 3 {
			return fmt.Errorf("flaky %d", n)
		}
		return nil
	}, Options{Workers: 1, MaxAttempts: 5})
	if err := q.Enqueue(ctxT(t), bot.Job{ID: "r", Kind: "k"}); err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 3; want++ {
		if got := recv(t, attempts); got != want {
			t.Fatalf("attempt %d, want %d", got, want)
		}
	}
	if err := q.Idle(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if len(count(t, s, KindJob)) != 0 || len(count(t, s, KindDeadLetter)) != 0 {
		t.Error("a job that finally succeeded left records behind")
	}
}

func TestDeadLetter(t *testing.T) {
	tests := []struct {
		name         string
		handler      func(n int) error
		wantAttempts int
		wantErr      string
	}{
		{"permanent error", func(int) error { return bot.Permanent(errors.New("bad payload")) }, 1, "bad payload"},
		{"max attempts", func(n int) error { return fmt.Errorf("down %d", n) }, 3, "down 3"},
		{"panic", func(int) error { panic("boom") }, 1, "panicked: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			done := make(chan int, 10)
			n := 0
			var givenUp []string
			q := newQueue(t, s, func(_ context.Context, j bot.Job) error {
				n++
				defer func() { done <- n }()
				return tt.handler(n)
			}, Options{Workers: 1, MaxAttempts: 3, GiveUp: func(_ context.Context, j bot.Job, cause string) error {
				givenUp = append(givenUp, j.ID+": "+cause)
				return errors.New("a failing give-up handler is only logged")
			}})
			if err := q.Enqueue(ctxT(t), bot.Job{ID: "d", Kind: "k", Payload: json.RawMessage(`{}`)}); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= tt.wantAttempts; i++ {
				recv(t, done)
			}
			if err := q.Idle(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if n != tt.wantAttempts {
				t.Errorf("ran %d times, want %d", n, tt.wantAttempts)
			}
			if len(count(t, s, KindJob)) != 0 {
				t.Error("dead job still pending")
			}
			dl := count(t, s, KindDeadLetter)
			if len(dl) != 1 {
				t.Fatalf("%d dead letters, want 1", len(dl))
			}
			var d DeadLetter
			if err := json.Unmarshal(dl[0].Data, &d); err != nil {
				t.Fatal(err)
			}
			if d.Job.ID != "d" || d.Attempts != tt.wantAttempts || !contains(d.Error, tt.wantErr) {
				t.Errorf("dead letter %+v", d)
			}
			if len(givenUp) != 1 || !contains(givenUp[0], "d: ") || !contains(givenUp[0], tt.wantErr) {
				t.Errorf("given up %q, want the job once with its last error", givenUp)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestPendingJobsSurviveACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s1, err := boltstore.Open(path, boltstore.WithSweepInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 2)
	q1, err := New(s1, func(ctx context.Context, j bot.Job) error {
		started <- struct{}{}
		<-ctx.Done() // never finishes on its own: the process "dies" mid-job
		return ctx.Err()
	}, Options{Workers: 1, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	q1.Start()
	ctx := ctxT(t)
	for _, id := range []string{"first", "second"} {
		if err := q1.Enqueue(ctx, bot.Job{ID: id, Kind: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, started)
	gone, cancel := context.WithCancel(ctx)
	cancel() // give up at once: like a kill, nothing finishes
	if err := q1.Close(gone); !errors.Is(err, context.Canceled) {
		t.Errorf("Close with a cancelled context = %v", err)
	}
	if err := q1.Enqueue(ctx, bot.Job{ID: "late", Kind: "k"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue after Close = %v, want ErrClosed", err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openStore(t, path)
	ran := make(chan string, 4)
	q2 := newQueue(t, s2, func(_ context.Context, j bot.Job) error { ran <- j.ID; return nil }, Options{})
	got := map[string]bool{recv(t, ran): true, recv(t, ran): true}
	if !got["first"] || !got["second"] {
		t.Errorf("after restart ran %v, want first and second", got)
	}
	if err := q2.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(count(t, s2, KindJob)); n != 0 {
		t.Errorf("%d jobs still pending", n)
	}
}

func TestCloseDrains(t *testing.T) {
	s := newStore(t)
	release := make(chan struct{})
	var mu sync.Mutex
	var done []string
	q, err := New(s, func(_ context.Context, j bot.Job) error {
		<-release
		mu.Lock()
		done = append(done, j.ID)
		mu.Unlock()
		return nil
	}, Options{Workers: 2, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	q.Start()
	for i := range 5 {
		if err := q.Enqueue(ctxT(t), bot.Job{ID: fmt.Sprint("j", i), Kind: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- q.Close(ctxT(t)) }()
	close(release)
	if err := recv(t, closed); err != nil {
		t.Fatal(err)
	}
	if len(done) != 5 {
		t.Errorf("Close returned after %d of 5 jobs", len(done))
	}
	if n := len(count(t, s, KindJob)); n != 0 {
		t.Errorf("%d jobs still pending after a graceful close", n)
	}
}

func TestEnqueueRejectsEmptyKind(t *testing.T) {
	q := newQueue(t, newStore(t), func(context.Context, bot.Job) error { return nil }, Options{})
	if err := q.Enqueue(ctxT(t), bot.Job{ID: "x"}); err == nil {
		t.Error("empty kind accepted")
	}
}

func TestBackoff(t *testing.T) {
	q := &Queue{opt: Options{BaseDelay: time.Second, MaxDelay: 10 * time.Second}}
	for _, tt := range []struct {
		attempt int
		base    time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}, {5, 10 * time.Second}, {50, 10 * time.Second}} {
		for range 20 {
			d := q.backoff(tt.attempt)
			if d < tt.base*8/10 || d > tt.base*12/10 {
				t.Errorf("backoff(%d) = %s, want %s ±20%%", tt.attempt, d, tt.base)
			}
		}
	}
}

func TestNothingRunsBeforeStart(t *testing.T) {
	s := newStore(t)
	ran := make(chan string, 1)
	q, err := New(s, func(_ context.Context, j bot.Job) error { ran <- j.ID; return nil }, Options{Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close(context.Background())
	if err := q.Enqueue(ctxT(t), bot.Job{ID: "early", Kind: "k"}); err != nil {
		t.Fatal(err)
	}
	if err := q.Idle(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-ran:
		t.Fatalf("job %s ran before Start", id)
	default:
	}
	q.Start()
	if id := recv(t, ran); id != "early" {
		t.Errorf("ran %s", id)
	}
}

// TestNotBefore: a deferred job holds no worker, runs no earlier than its
// NotBefore, coalesces with a second request under the same id, and is
// still deferred after a restart.
func TestNotBefore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s1, err := boltstore.Open(path, boltstore.WithSweepInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	ran1 := make(chan string, 4)
	q1, err := New(s1, func(_ context.Context, j bot.Job) error { ran1 <- j.ID; return nil }, Options{Workers: 1, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	q1.Start()
	ctx := ctxT(t)
	later := time.Now().Add(time.Hour)
	for range 2 { // the second is a repeated flush request: a no-op
		if err := q1.Enqueue(ctx, bot.Job{ID: "flush/C1", Kind: "k", NotBefore: later}); err != nil {
			t.Fatal(err)
		}
	}
	// The only worker is free: an undeferred job runs past the deferred one.
	if err := q1.Enqueue(ctx, bot.Job{ID: "now", Kind: "k"}); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ran1); got != "now" {
		t.Fatalf("ran %q first, want now", got)
	}
	if err := q1.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-ran1:
		t.Fatalf("ran %q before its NotBefore", id)
	default:
	}
	if recs := count(t, s1, KindJob); len(recs) != 1 || recs[0].Key != "flush/C1" {
		t.Fatalf("pending after close: %v, want the deferred job once", recs)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart: still deferred (rewritten to a near NotBefore to see it run).
	s2 := openStore(t, path)
	var e entry
	recs := count(t, s2, KindJob)
	if err := json.Unmarshal(recs[0].Data, &e); err != nil {
		t.Fatal(err)
	}
	if !e.Job.NotBefore.Equal(later) {
		t.Fatalf("stored NotBefore %v, want %v", e.Job.NotBefore, later)
	}
	due := time.Now().Add(300 * time.Millisecond)
	e.Job.NotBefore = due
	data, _ := json.Marshal(e)
	if _, err := s2.Put(ctx, bot.Record{Kind: KindJob, Key: recs[0].Key, Version: recs[0].Version, Data: data}); err != nil {
		t.Fatal(err)
	}
	type run struct {
		id string
		at time.Time
	}
	ran2 := make(chan run, 4)
	newQueue(t, s2, func(_ context.Context, j bot.Job) error { ran2 <- run{j.ID, time.Now()}; return nil }, Options{})
	r := recv(t, ran2)
	if r.id != "flush/C1" || r.at.Before(due) {
		t.Errorf("after restart ran %q at %v, want flush/C1 not before %v", r.id, r.at, due)
	}
}
