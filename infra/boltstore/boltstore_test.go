package boltstore

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/storetest"
)

// open returns a fresh store in the test's temporary directory.
func open(t testing.TB, opts ...Option) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "tokken.db"), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) bot.Store { return open(t) })
}

func TestOpenLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokken.db")
	first, err := Open(path)
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	defer first.Close()

	start := time.Now()
	second, err := Open(path, WithLockTimeout(100*time.Millisecond))
	if err == nil {
		second.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if want := "store " + path + " is in use by another tokken process"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("Open waited %s for the lock", waited)
	}

	// Once the first holder closes, the file opens.
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	third, err := Open(path)
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	third.Close()
}

func TestOpenBadPath(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing-dir", "tokken.db"))
	if err == nil || !strings.Contains(err.Error(), "open store") {
		t.Fatalf("Open in a missing directory: err = %v, want an open store error", err)
	}
}

func TestReopenKeepsRecords(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tokken.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	exp := time.Now().Add(time.Hour)
	if _, err := s.Put(ctx, bot.Record{Kind: "timer", Key: "t1", Data: []byte("due"), ExpiresAt: exp}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := s.Put(ctx, bot.Record{Kind: "timer", Key: "t1", Version: 1, Data: []byte("due2"), ExpiresAt: exp}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Get(ctx, "timer", "t1"); err == nil {
		t.Fatal("Get on a closed store succeeded")
	}

	s, err = Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	got, err := s.Get(ctx, "timer", "t1")
	if err != nil {
		t.Fatalf("Get after reopen: %v", err)
	}
	if got.Version != 2 || string(got.Data) != "due2" || !got.ExpiresAt.Equal(exp) {
		t.Fatalf("after reopen: version %d data %q expires %v, want 2 %q %v", got.Version, got.Data, got.ExpiresAt, "due2", exp)
	}
}

// sessionCount counts the stored records of kind "session", expired or not.
func sessionCount(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("session")); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	}); err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

func putSession(t *testing.T, s *Store, key string, exp time.Time) {
	t.Helper()
	if _, err := s.Put(t.Context(), bot.Record{Kind: "session", Key: key, Data: []byte("x"), ExpiresAt: exp}); err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
}

// TestSweep checks that Sweep physically deletes expired records and keeps
// live ones.
func TestSweep(t *testing.T) {
	ctx := t.Context()
	s := open(t, WithSweepInterval(0))
	past := time.Now().Add(-time.Minute)
	putSession(t, s, "live", time.Time{})
	putSession(t, s, "later", time.Now().Add(time.Hour))
	putSession(t, s, "old1", past)
	putSession(t, s, "old2", past)
	if _, err := s.Put(ctx, bot.Record{Kind: "other", Key: "old3", ExpiresAt: past}); err != nil {
		t.Fatalf("Put: %v", err)
	}

	n, err := s.Sweep(ctx)
	if err != nil || n != 3 {
		t.Fatalf("Sweep = %d, %v; want 3 deleted", n, err)
	}
	if got := sessionCount(t, s); got != 2 {
		t.Fatalf("%d session records stored after the sweep, want 2", got)
	}
	for _, key := range []string{"live", "later"} {
		if _, err := s.Get(ctx, "session", key); err != nil {
			t.Fatalf("live record %s: %v", key, err)
		}
	}
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v; want nothing to do", n, err)
	}
}

// TestBackgroundSweep checks the sweeper runs on its own until Close.
func TestBackgroundSweep(t *testing.T) {
	ctx := t.Context()
	sweeps := make(chan int)
	hook := func(o *options) {
		o.afterSweep = func(n int, err error) {
			if err != nil {
				t.Errorf("background sweep: %v", err)
			}
			select {
			case sweeps <- n:
			case <-ctx.Done(): // the test is over: let Close stop the sweeper
			}
		}
	}
	s := open(t, WithSweepInterval(10*time.Millisecond), hook)
	putSession(t, s, "live", time.Time{})
	past := time.Now().Add(-time.Minute)
	putSession(t, s, "old1", past)
	putSession(t, s, "old2", past)

	deleted := 0
	for deleted < 2 {
		deleted += <-sweeps
	}
	if deleted != 2 {
		t.Fatalf("background sweeps deleted %d records, want 2", deleted)
	}
	if got := sessionCount(t, s); got != 1 {
		t.Fatalf("%d records stored after the sweeps, want 1", got)
	}
}

// TestClock checks expiry is decided by the store's clock, to the nanosecond.
func TestClock(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	s := open(t, WithClock(clock), WithSweepInterval(0))
	ctx := t.Context()
	exp := now.Add(time.Nanosecond)
	if _, err := s.Put(ctx, bot.Record{Kind: "k", Key: "a", ExpiresAt: exp}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := s.Get(ctx, "k", "a"); err != nil {
		t.Fatalf("Get before expiry: %v", err)
	}
	now = now.Add(time.Nanosecond) // the expiry instant itself is still live
	if _, err := s.Get(ctx, "k", "a"); err != nil {
		t.Fatalf("Get at the expiry instant: %v", err)
	}
	now = now.Add(time.Nanosecond)
	if _, err := s.Get(ctx, "k", "a"); !errors.Is(err, bot.ErrNotFound) {
		t.Fatalf("Get after expiry: %v, want ErrNotFound", err)
	}
}

func TestCorruptValue(t *testing.T) {
	s := open(t, WithSweepInterval(0))
	ctx := t.Context()
	for _, raw := range [][]byte{{}, {9, 0, 0}, append([]byte{2}, make([]byte, headerLength)...)} {
		if err := s.db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("k"))
			if err != nil {
				return err
			}
			return b.Put([]byte("bad"), raw)
		}); err != nil {
			t.Fatalf("write corrupt value: %v", err)
		}
		if _, err := s.Get(ctx, "k", "bad"); err == nil || errors.Is(err, bot.ErrNotFound) {
			t.Errorf("Get of corrupt value %x: err = %v, want a corruption error", raw, err)
		}
		if _, err := s.List(ctx, "k", bot.KeyRange{}, 0); err == nil {
			t.Errorf("List over corrupt value %x: no error", raw)
		}
		if _, err := s.Put(ctx, bot.Record{Kind: "k", Key: "bad", Version: 1}); err == nil {
			t.Errorf("Put over corrupt value %x: no error", raw)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(3, time.Unix(10, 0), []byte("data")))
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, ok, err := decode(raw)
		if err != nil {
			return
		}
		if !ok {
			t.Fatalf("decode(%x) reported no record for a non-nil value", raw)
		}
		var exp time.Time
		if v.expiresAt != 0 {
			exp = time.Unix(0, v.expiresAt)
		}
		if again := encode(v.version, exp, v.data); string(again) != string(raw) {
			t.Fatalf("re-encoding %x gave %x", raw, again)
		}
	})
}

func BenchmarkPut(b *testing.B)             { storetest.BenchPut(b, open(b)) }
func BenchmarkGet(b *testing.B)             { storetest.BenchGet(b, open(b)) }
func BenchmarkUpdateContended(b *testing.B) { storetest.BenchUpdateContended(b, open(b)) }

// TestBatchedPuts: creates made while another Put is under way share a
// commit (here all eight, held until the batch is full) and each gets its
// own answer: the creates of distinct keys are written, and of two
// creating the same key one wins and the other gets a conflict without
// undoing the rest of the batch. A create alone commits at once.
func TestBatchedPuts(t *testing.T) {
	s := open(t, WithSweepInterval(0))
	const n = 8
	s.db.MaxBatchSize, s.db.MaxBatchDelay = n, time.Minute // one batch of all n, or a lone create waiting a minute

	done := make(chan error, 1)
	go func() {
		_, err := s.Put(t.Context(), bot.Record{Kind: "seen", Key: "alone", Data: []byte(`{}`)})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("lone create: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a lone create waited for others to share its commit")
	}

	s.puts.Add(1) // another Put under way
	defer s.puts.Add(-1)
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5", "same", "same"}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() {
			_, errs[i] = s.Put(t.Context(), bot.Record{Kind: "seen", Key: k, Data: []byte(`{}`)})
		})
	}
	wg.Wait()
	for i, k := range keys[:6] {
		if errs[i] != nil {
			t.Errorf("Put %s: %v", k, errs[i])
		}
		if _, err := s.Get(t.Context(), "seen", k); err != nil {
			t.Errorf("Get %s after the batch: %v", k, err)
		}
	}
	if (errs[6] == nil) == (errs[7] == nil) {
		t.Fatalf("two creates of one key in a batch: errors %v and %v, want exactly one conflict", errs[6], errs[7])
	}
	conflict := errs[6]
	if conflict == nil {
		conflict = errs[7]
	}
	if !errors.Is(conflict, bot.ErrConflict) {
		t.Errorf("the losing create: %v, want a conflict", conflict)
	}
}
