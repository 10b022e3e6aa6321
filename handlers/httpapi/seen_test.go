package httpapi

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokken/tokken/infra/boltstore"
)

// TestMemoryDeliveries drives the in-memory record through a sequence of
// steps on a controlled clock.
func TestMemoryDeliveries(t *testing.T) {
	start := time.Unix(1_800_000_000, 500_000_000)
	type step struct {
		at      time.Duration // after start
		op      string        // "first" or "forget"
		key     string
		want    bool // first's answer
		wantLen int  // remembered keys after the step
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"repeat within the ttl", []step{
			{op: "first", key: "a", want: true, wantLen: 1},
			{at: time.Minute, op: "first", key: "a", want: false, wantLen: 1},
			{at: time.Minute, op: "first", key: "b", want: true, wantLen: 2},
		}},
		{"forgotten after the ttl", []step{
			{op: "first", key: "a", want: true, wantLen: 1},
			{at: 10 * time.Minute, op: "first", key: "b", want: true, wantLen: 2},
			{at: time.Hour, op: "first", key: "a", want: true, wantLen: 2}, // a expired and came back; b still there
			{at: time.Hour + 10*time.Minute, op: "first", key: "c", want: true, wantLen: 2},
		}},
		{"forget lets a retry run", []step{
			{op: "first", key: "a", want: true, wantLen: 1},
			{op: "forget", key: "a", wantLen: 0},
			{at: time.Second, op: "first", key: "a", want: true, wantLen: 1},
			{at: time.Second, op: "first", key: "a", want: false, wantLen: 1},
		}},
		{"an old entry of a forgotten key does not expire its new record", []step{
			{op: "first", key: "a", want: true, wantLen: 1},
			{op: "forget", key: "a", wantLen: 0},
			{at: 30 * time.Minute, op: "first", key: "a", want: true, wantLen: 1},
			// The first record's time is up; the second's is not.
			{at: time.Hour + time.Minute, op: "first", key: "a", want: false, wantLen: 1},
			{at: 90*time.Minute + time.Second, op: "first", key: "z", want: true, wantLen: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := start
			m := newMemoryDeliveries(SeenTTL, func() time.Time { return now })
			for i, s := range tt.steps {
				now = start.Add(s.at)
				ctx := context.Background()
				switch s.op {
				case "first":
					got, err := m.first(ctx, s.key)
					if err != nil {
						t.Fatalf("step %d: first(%s): %v", i, s.key, err)
					}
					if got != s.want {
						t.Errorf("step %d: first(%s) = %v, want %v", i, s.key, got, s.want)
					}
				case "forget":
					if err := m.forget(ctx, s.key); err != nil {
						t.Fatalf("step %d: forget: %v", i, err)
					}
				}
				if n := m.len(); n != s.wantLen {
					t.Errorf("step %d: %d keys remembered, want %d", i, n, s.wantLen)
				}
			}
		})
	}
}

// TestMemoryDeliveriesOnceUnderConcurrency: of many goroutines delivering
// the same key at once, exactly one is first.
func TestMemoryDeliveriesOnceUnderConcurrency(t *testing.T) {
	m := newMemoryDeliveries(SeenTTL, time.Now)
	const n = 32
	firsts := make(chan bool, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			ok, err := m.first(context.Background(), "ix:block_actions:T1")
			if err != nil {
				t.Error(err)
			}
			firsts <- ok
		}()
	}
	close(start)
	count := 0
	for range n {
		if <-firsts {
			count++
		}
	}
	if count != 1 {
		t.Errorf("%d deliveries were first, want 1", count)
	}
}

func TestMemoryDeliveriesSavedAndLoaded(t *testing.T) {
	ctx := context.Background()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "seen.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	log := slog.New(slog.DiscardHandler)

	m := newMemoryDeliveries(SeenTTL, time.Now)
	if err := m.persist(ctx, store, log); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ran", "failed"} {
		if ok, _ := m.first(ctx, k); !ok {
			t.Fatalf("first(%s) = false on a fresh set", k)
		}
	}
	_ = m.forget(ctx, "failed") // a failed delivery is forgotten so its retry runs
	if err := m.save(ctx); err != nil {
		t.Fatal(err)
	}

	// A new process over the same store.
	again := newMemoryDeliveries(SeenTTL, time.Now)
	if err := again.persist(ctx, store, log); err != nil {
		t.Fatal(err)
	}
	if ok, _ := again.first(ctx, "ran"); ok {
		t.Error("a delivery saved before the restart ran again after it")
	}
	if ok, _ := again.first(ctx, "failed"); !ok {
		t.Error("a forgotten (failed) delivery was saved: its retry would be refused")
	}
}
