// Package storetest is the contract every bot.Store adapter must honour,
// written once as an executable test suite.
//
// An adapter's tests call Run with a function that opens a fresh, empty
// store; benchmarks call BenchPut, BenchGet and BenchUpdateContended. The
// suite is the definition of the semantics in bot/store.go made concrete,
// plus the limits every adapter shares so that code which works against the
// embedded store also works against DynamoDB:
//
//   - kinds and keys are non-empty, valid UTF-8 and at most MaxKeyBytes long;
//   - a record (kind, key and data) is at most about 400 KB (DynamoDB's item
//     limit); larger writes fail with an error, never a panic;
//   - ExpiresAt may be rounded up to a whole second.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
)

// MaxKeyBytes is the longest key every adapter must accept (bot.MaxKeyBytes,
// DynamoDB's limit for a sort key). Adapters reject longer keys.
const MaxKeyBytes = bot.MaxKeyBytes

// Run runs the contract suite against the adapter that open creates. open is
// called once per subtest and must return a fresh, empty store, closing it
// with t.Cleanup when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) bot.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s bot.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Versions", testVersions},
		{"CreateConflict", testCreateConflict},
		{"StaleVersion", testStaleVersion},
		{"TwoWriters", testTwoWriters},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"Delete", testDelete},
		{"Expiry", testExpiry},
		{"ExpiresAtRoundTrip", testExpiresAtRoundTrip},
		{"ListRanges", testListRanges},
		{"ListLimit", testListLimit},
		{"ListSkipsExpired", testListSkipsExpired},
		{"KindsIsolated", testKindsIsolated},
		{"AwkwardKeys", testAwkwardKeys},
		{"Documents", testDocuments},
		{"InvalidInput", testInvalidInput},
		{"CancelledContext", testCancelledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// mustPut writes rec and fails the test unless the store returns want.
func mustPut(t *testing.T, s bot.Store, rec bot.Record, want int64) {
	t.Helper()
	got, err := s.Put(t.Context(), rec)
	if err != nil {
		t.Fatalf("Put(%s %q, version %d): %v", rec.Kind, rec.Key, rec.Version, err)
	}
	if got != want {
		t.Fatalf("Put(%s %q, version %d) = version %d, want %d", rec.Kind, rec.Key, rec.Version, got, want)
	}
}

// mustGet reads a record that must exist.
func mustGet(t *testing.T, s bot.Store, kind, key string) bot.Record {
	t.Helper()
	rec, err := s.Get(t.Context(), kind, key)
	if err != nil {
		t.Fatalf("Get(%s %q): %v", kind, key, err)
	}
	if rec.Kind != kind || rec.Key != key {
		t.Fatalf("Get(%s %q) returned record %s %q", kind, key, rec.Kind, rec.Key)
	}
	return rec
}

// mustBeAbsent checks that Get reports ErrNotFound.
func mustBeAbsent(t *testing.T, s bot.Store, kind, key string) {
	t.Helper()
	rec, err := s.Get(t.Context(), kind, key)
	if !errors.Is(err, bot.ErrNotFound) {
		t.Fatalf("Get(%s %q) = (version %d, %v), want ErrNotFound", kind, key, rec.Version, err)
	}
}

// wantConflict checks that err is a *bot.ConflictError about kind/key/expected.
func wantConflict(t *testing.T, err error, kind, key string, expected int64) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s %q: got no error, want a conflict (expected version %d)", kind, key, expected)
	}
	if !errors.Is(err, bot.ErrConflict) {
		t.Fatalf("%s %q: error %v does not match bot.ErrConflict", kind, key, err)
	}
	var ce *bot.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("%s %q: error %v (%T) is not a *bot.ConflictError", kind, key, err, err)
	}
	if ce.Kind != kind || ce.Key != key || ce.Expected != expected {
		t.Fatalf("conflict = {Kind %q, Key %q, Expected %d}, want {%q, %q, %d}",
			ce.Kind, ce.Key, ce.Expected, kind, key, expected)
	}
}

// keysOf lists the keys of kind within r, failing the test on error.
func keysOf(t *testing.T, s bot.Store, kind string, r bot.KeyRange, limit int) []string {
	t.Helper()
	recs, err := s.List(t.Context(), kind, r, limit)
	if err != nil {
		t.Fatalf("List(%s, %+q, %d): %v", kind, r, limit, err)
	}
	keys := make([]string, 0, len(recs))
	for _, rec := range recs {
		if rec.Kind != kind {
			t.Fatalf("List(%s) returned a record of kind %q", kind, rec.Kind)
		}
		keys = append(keys, rec.Key)
	}
	return keys
}

func testRoundTrip(t *testing.T, s bot.Store) {
	ctx := t.Context()
	mustBeAbsent(t, s, "request", "r1")

	mustPut(t, s, bot.Record{Kind: "request", Key: "r1", Data: []byte(`{"state":"pending"}`)}, 1)
	got := mustGet(t, s, "request", "r1")
	if got.Version != 1 || string(got.Data) != `{"state":"pending"}` || !got.ExpiresAt.IsZero() {
		t.Fatalf("after create: got version %d data %q expires %v", got.Version, got.Data, got.ExpiresAt)
	}

	mustPut(t, s, bot.Record{Kind: "request", Key: "r1", Version: 1, Data: []byte(`{"state":"approved"}`)}, 2)
	got = mustGet(t, s, "request", "r1")
	if got.Version != 2 || string(got.Data) != `{"state":"approved"}` {
		t.Fatalf("after update: got version %d data %q", got.Version, got.Data)
	}

	if err := s.Delete(ctx, "request", "r1", 2); err != nil {
		t.Fatalf("Delete at current version: %v", err)
	}
	mustBeAbsent(t, s, "request", "r1")
	if keys := keysOf(t, s, "request", bot.KeyRange{}, 0); len(keys) != 0 {
		t.Fatalf("List after delete = %q, want none", keys)
	}

	// A deleted record can be created again, and starts over at version 1.
	mustPut(t, s, bot.Record{Kind: "request", Key: "r1", Data: []byte(`{}`)}, 1)
}

func testVersions(t *testing.T, s bot.Store) {
	mustPut(t, s, bot.Record{Kind: "grant", Key: "g", Data: []byte("0")}, 1)
	for v := int64(1); v <= 10; v++ {
		data := fmt.Appendf(nil, "%d", v)
		mustPut(t, s, bot.Record{Kind: "grant", Key: "g", Version: v, Data: data}, v+1)
		got := mustGet(t, s, "grant", "g")
		if got.Version != v+1 || !bytes.Equal(got.Data, data) {
			t.Fatalf("after write %d: version %d data %q, want version %d data %q", v, got.Version, got.Data, v+1, data)
		}
	}
	recs, err := s.List(t.Context(), "grant", bot.KeyRange{}, 0)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(recs) != 1 || recs[0].Version != 11 || string(recs[0].Data) != "10" {
		t.Fatalf("List = %+v, want one record at version 11", recs)
	}
}

func testCreateConflict(t *testing.T, s bot.Store) {
	mustPut(t, s, bot.Record{Kind: "request", Key: "dup", Data: []byte("first")}, 1)
	_, err := s.Put(t.Context(), bot.Record{Kind: "request", Key: "dup", Data: []byte("second")})
	wantConflict(t, err, "request", "dup", 0)
	if got := mustGet(t, s, "request", "dup"); got.Version != 1 || string(got.Data) != "first" {
		t.Fatalf("losing create changed the record: version %d data %q", got.Version, got.Data)
	}
}

func testStaleVersion(t *testing.T, s bot.Store) {
	mustPut(t, s, bot.Record{Kind: "request", Key: "k", Data: []byte("v1")}, 1)
	mustPut(t, s, bot.Record{Kind: "request", Key: "k", Version: 1, Data: []byte("v2")}, 2)

	for _, expected := range []int64{1, 3, 7} {
		_, err := s.Put(t.Context(), bot.Record{Kind: "request", Key: "k", Version: expected, Data: []byte("stale")})
		wantConflict(t, err, "request", "k", expected)
	}
	if got := mustGet(t, s, "request", "k"); got.Version != 2 || string(got.Data) != "v2" {
		t.Fatalf("stale writes changed the record: version %d data %q", got.Version, got.Data)
	}

	// Updating a record that does not exist is a conflict too: the writer's
	// view (version 4 exists) is wrong.
	_, err := s.Put(t.Context(), bot.Record{Kind: "request", Key: "missing", Version: 4, Data: []byte("x")})
	wantConflict(t, err, "request", "missing", 4)
	mustBeAbsent(t, s, "request", "missing")
}

// testTwoWriters is the double-approval race: two writers read the same
// version and both try to move the record on. Exactly one must win.
func testTwoWriters(t *testing.T, s bot.Store) {
	for _, tc := range []struct {
		name string
		base int64 // version both writers read: 0 means both try to create
	}{
		{"create", 0},
		{"update", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "race-" + tc.name
			if tc.base > 0 {
				mustPut(t, s, bot.Record{Kind: "request", Key: key, Data: []byte("pending")}, 1)
			}
			start := make(chan struct{})
			type result struct {
				writer  string
				version int64
				err     error
			}
			results := make(chan result, 2)
			var wg sync.WaitGroup
			for _, writer := range []string{"alice", "bob"} {
				wg.Go(func() {
					<-start
					v, err := s.Put(t.Context(), bot.Record{Kind: "request", Key: key, Version: tc.base, Data: []byte(writer)})
					results <- result{writer, v, err}
				})
			}
			close(start)
			wg.Wait()
			close(results)

			var winner string
			var losers []error
			for r := range results {
				if r.err == nil {
					if r.version != tc.base+1 {
						t.Errorf("%s won with version %d, want %d", r.writer, r.version, tc.base+1)
					}
					winner = r.writer
					continue
				}
				losers = append(losers, r.err)
			}
			if winner == "" || len(losers) != 1 {
				t.Fatalf("want exactly one winner and one loser, got winner %q and errors %v", winner, losers)
			}
			wantConflict(t, losers[0], "request", key, tc.base)
			if got := mustGet(t, s, "request", key); got.Version != tc.base+1 || string(got.Data) != winner {
				t.Fatalf("stored version %d data %q, want version %d data %q", got.Version, got.Data, tc.base+1, winner)
			}
		})
	}
}

// counter is the document testConcurrentUpdates increments.
type counter struct {
	N int `json:"n"`
}

// testConcurrentUpdates checks optimistic concurrency under contention: every
// increment lands exactly once, however the writers interleave.
func testConcurrentUpdates(t *testing.T, s bot.Store) {
	const writers = 30
	ctx := t.Context()
	tbl := bot.Table[counter]{Store: s, Kind: "counter"}
	if err := tbl.Create(ctx, "hits", counter{}, 0); err != nil {
		t.Fatalf("create counter: %v", err)
	}

	start := make(chan struct{})
	errs := make(chan error, writers)
	var (
		mu       sync.Mutex
		attempts int // calls of the update function, retries included
		giveUps  int // Table.Update gave up after too many conflicts
	)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			<-start
			for try := 1; ; try++ {
				_, err := tbl.Update(ctx, "hits", func(c *counter) error {
					mu.Lock()
					attempts++
					mu.Unlock()
					c.N++
					return nil
				})
				if errors.Is(err, bot.ErrConflict) && try < 10 {
					// Table.Update bounds its retries; under this much
					// contention it may give up, and trying again is
					// what a caller does. The increment must still land
					// exactly once.
					mu.Lock()
					giveUps++
					mu.Unlock()
					continue
				}
				errs <- err
				return
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
	}

	got, err := tbl.Get(ctx, "hits")
	if err != nil {
		t.Fatalf("read counter: %v", err)
	}
	if got.Value.N != writers || got.Version != writers+1 {
		t.Fatalf("counter = %d at version %d, want %d at version %d", got.Value.N, got.Version, writers, writers+1)
	}
	t.Logf("%d increments took %d attempts (%d conflicts), %d give-ups", writers, attempts, attempts-writers, giveUps)
}

func testDelete(t *testing.T, s bot.Store) {
	ctx := t.Context()
	mustPut(t, s, bot.Record{Kind: "timer", Key: "t1", Data: []byte("a")}, 1)
	mustPut(t, s, bot.Record{Kind: "timer", Key: "t1", Version: 1, Data: []byte("b")}, 2)

	for _, wrong := range []int64{1, 3} {
		wantConflict(t, s.Delete(ctx, "timer", "t1", wrong), "timer", "t1", wrong)
	}
	if got := mustGet(t, s, "timer", "t1"); got.Version != 2 {
		t.Fatalf("record changed by losing deletes: version %d", got.Version)
	}

	if err := s.Delete(ctx, "timer", "t1", 0); err != nil {
		t.Fatalf("unconditional Delete: %v", err)
	}
	mustBeAbsent(t, s, "timer", "t1")

	// Deleting what is not there is not an error, with or without a version,
	// and in a kind that was never written.
	for _, version := range []int64{0, 2, 5} {
		if err := s.Delete(ctx, "timer", "t1", version); err != nil {
			t.Errorf("Delete(missing, version %d): %v", version, err)
		}
	}
	if err := s.Delete(ctx, "never-written", "x", 0); err != nil {
		t.Errorf("Delete in an unknown kind: %v", err)
	}
}

func testExpiry(t *testing.T, s bot.Store) {
	ctx := t.Context()
	past := time.Now().Add(-time.Hour)

	mustPut(t, s, bot.Record{Kind: "session", Key: "old", Data: []byte("gone"), ExpiresAt: past}, 1)
	mustBeAbsent(t, s, "session", "old")
	if keys := keysOf(t, s, "session", bot.KeyRange{}, 0); len(keys) != 0 {
		t.Fatalf("List shows expired records %q", keys)
	}

	// An expired record is absent: updating it is a conflict, creating over
	// it succeeds and starts again at version 1.
	_, err := s.Put(ctx, bot.Record{Kind: "session", Key: "old", Version: 1, Data: []byte("revive")})
	wantConflict(t, err, "session", "old", 1)
	mustPut(t, s, bot.Record{Kind: "session", Key: "old", Data: []byte("new")}, 1)
	if got := mustGet(t, s, "session", "old"); string(got.Data) != "new" || !got.ExpiresAt.IsZero() {
		t.Fatalf("re-created record: data %q expires %v, want data \"new\" and no expiry", got.Data, got.ExpiresAt)
	}

	// A live record becomes invisible once it is written with a past expiry.
	mustPut(t, s, bot.Record{Kind: "session", Key: "live", Data: []byte("x"), ExpiresAt: time.Now().Add(time.Hour)}, 1)
	mustGet(t, s, "session", "live")
	mustPut(t, s, bot.Record{Kind: "session", Key: "live", Version: 1, Data: []byte("x"), ExpiresAt: past}, 2)
	mustBeAbsent(t, s, "session", "live")

	// Deleting an expired record, at any version, is deleting nothing.
	if err := s.Delete(ctx, "session", "live", 1); err != nil {
		t.Fatalf("Delete(expired, stale version): %v", err)
	}
	mustPut(t, s, bot.Record{Kind: "session", Key: "live", Data: []byte("y")}, 1)
}

func testExpiresAtRoundTrip(t *testing.T, s bot.Store) {
	exp := time.Now().Add(90 * time.Minute).Truncate(time.Millisecond)
	mustPut(t, s, bot.Record{Kind: "audit", Key: "a", Data: []byte("x"), ExpiresAt: exp}, 1)
	got := mustGet(t, s, "audit", "a")
	// Adapters may round up to a whole second, never down: a record must
	// not disappear before the instant it was given.
	if got.ExpiresAt.Before(exp) || got.ExpiresAt.Sub(exp) >= time.Second {
		t.Fatalf("ExpiresAt = %v, want %v (rounded up by less than a second)", got.ExpiresAt, exp)
	}

	// Put replaces the whole record: an update without ExpiresAt clears it.
	mustPut(t, s, bot.Record{Kind: "audit", Key: "a", Version: 1, Data: []byte("y")}, 2)
	if got := mustGet(t, s, "audit", "a"); !got.ExpiresAt.IsZero() {
		t.Fatalf("ExpiresAt after an update without one = %v, want zero", got.ExpiresAt)
	}
}

func testListRanges(t *testing.T, s bot.Store) {
	keys := []string{"c", "a", "abc", "ba", "ab", "b", "b\x00", "日本", "日", "b~"}
	for _, k := range keys {
		mustPut(t, s, bot.Record{Kind: "item", Key: k, Data: []byte(k)}, 1)
	}
	all := slices.Clone(keys)
	slices.Sort(all) // byte order

	tests := []struct {
		name string
		r    bot.KeyRange
		want []string
	}{
		{"everything", bot.KeyRange{}, all},
		{"from", bot.KeyRange{From: "b"}, []string{"b", "b\x00", "ba", "b~", "c", "日", "日本"}},
		{"from between keys", bot.KeyRange{From: "aa"}, []string{"ab", "abc", "b", "b\x00", "ba", "b~", "c", "日", "日本"}},
		{"to is exclusive", bot.KeyRange{To: "b"}, []string{"a", "ab", "abc"}},
		{"from and to", bot.KeyRange{From: "ab", To: "ba"}, []string{"ab", "abc", "b", "b\x00"}},
		{"from equals to", bot.KeyRange{From: "b", To: "b"}, nil},
		{"from after to", bot.KeyRange{From: "c", To: "a"}, nil},
		{"past the last key", bot.KeyRange{From: "\uffff"}, nil},
		{"to past every key", bot.KeyRange{From: "c", To: "\xff"}, []string{"c", "日", "日本"}},
		{"from not valid UTF-8", bot.KeyRange{From: "\xe6\x97"}, []string{"日", "日本"}},
		{"to not valid UTF-8", bot.KeyRange{To: "b\x80"}, []string{"a", "ab", "abc", "b", "b\x00", "ba", "b~"}},
		{"prefix", bot.PrefixRange("ab"), []string{"ab", "abc"}},
		{"prefix of one key", bot.PrefixRange("b"), []string{"b", "b\x00", "ba", "b~"}},
		{"unicode prefix", bot.PrefixRange("日"), []string{"日", "日本"}},
		{"empty prefix", bot.PrefixRange(""), all},
		{"prefix matching nothing", bot.PrefixRange("zz"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := keysOf(t, s, "item", tc.r, 0)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("List(%+q) = %+q, want %+q", tc.r, got, tc.want)
			}
		})
	}

	// Records come back whole, not just their keys.
	recs, err := s.List(t.Context(), "item", bot.PrefixRange("日"), 0)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, rec := range recs {
		if rec.Version != 1 || string(rec.Data) != rec.Key {
			t.Fatalf("List record %q: version %d data %q", rec.Key, rec.Version, rec.Data)
		}
	}
}

func testListLimit(t *testing.T, s bot.Store) {
	var all []string
	for i := range 25 {
		k := fmt.Sprintf("k%02d", i)
		all = append(all, k)
		mustPut(t, s, bot.Record{Kind: "item", Key: k, Data: []byte("x")}, 1)
	}
	tests := []struct {
		r     bot.KeyRange
		limit int
		want  []string
	}{
		{bot.KeyRange{}, 0, all},
		{bot.KeyRange{}, -1, all},
		{bot.KeyRange{}, 1, all[:1]},
		{bot.KeyRange{}, 10, all[:10]},
		{bot.KeyRange{}, 25, all},
		{bot.KeyRange{}, 100, all},
		{bot.KeyRange{From: "k10"}, 3, all[10:13]},
		{bot.KeyRange{From: "k10", To: "k12"}, 5, all[10:12]},
		{bot.PrefixRange("k1"), 4, all[10:14]},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%+q/%d", tc.r, tc.limit), func(t *testing.T) {
			if got := keysOf(t, s, "item", tc.r, tc.limit); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func testListSkipsExpired(t *testing.T, s bot.Store) {
	past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	for i := range 10 {
		rec := bot.Record{Kind: "grant", Key: fmt.Sprintf("g%d", i), Data: []byte("x")}
		switch i % 3 {
		case 0:
			rec.ExpiresAt = past
		case 1:
			rec.ExpiresAt = future
		}
		mustPut(t, s, rec, 1)
	}
	live := []string{"g1", "g2", "g4", "g5", "g7", "g8"}
	if got := keysOf(t, s, "grant", bot.KeyRange{}, 0); !slices.Equal(got, live) {
		t.Fatalf("List = %q, want only live records %q", got, live)
	}
	// The limit counts live records only.
	if got := keysOf(t, s, "grant", bot.KeyRange{}, 3); !slices.Equal(got, live[:3]) {
		t.Fatalf("List limit 3 = %q, want %q", got, live[:3])
	}
}

func testKindsIsolated(t *testing.T, s bot.Store) {
	// Kinds that are prefixes of one another, and keys equal across kinds.
	for _, kind := range []string{"req", "request", "requests"} {
		for _, key := range []string{"1", "2"} {
			mustPut(t, s, bot.Record{Kind: kind, Key: key, Data: []byte(kind + "/" + key)}, 1)
		}
	}
	mustPut(t, s, bot.Record{Kind: "request", Key: "1", Version: 1, Data: []byte("changed")}, 2)

	for _, kind := range []string{"req", "requests"} {
		if got := mustGet(t, s, kind, "1"); got.Version != 1 || string(got.Data) != kind+"/1" {
			t.Fatalf("%s 1 was touched by a write to another kind: version %d data %q", kind, got.Version, got.Data)
		}
		if got := keysOf(t, s, kind, bot.KeyRange{}, 0); !slices.Equal(got, []string{"1", "2"}) {
			t.Fatalf("List(%s) = %q", kind, got)
		}
	}
	if err := s.Delete(t.Context(), "req", "2", 0); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	mustGet(t, s, "request", "2")
	mustGet(t, s, "requests", "2")
	mustBeAbsent(t, s, "other", "1")
	if got := keysOf(t, s, "other", bot.KeyRange{}, 0); len(got) != 0 {
		t.Fatalf("List of an unused kind = %q", got)
	}
}

func testAwkwardKeys(t *testing.T, s bot.Store) {
	keys := []string{
		"T012#C345#1700000000.123456", "arn:aws:iam::123456789012:role/prod", "a/b/c", "a//b",
		"user:U01#2", "#", "/", ":", " spaced key ", "quote\"and'apostrophe", "back\\slash",
		"ünïcödé", "日本語キー", "emoji 🔑", "tab\tnewline\n", "percent%20", "a+b=c&d",
		strings.Repeat("k", MaxKeyBytes), strings.Repeat("é", MaxKeyBytes/2),
	}
	for i, k := range keys {
		mustPut(t, s, bot.Record{Kind: "weird#kind/with:chars", Key: k, Data: fmt.Appendf(nil, "%d", i)}, 1)
	}
	for i, k := range keys {
		if got := mustGet(t, s, "weird#kind/with:chars", k); string(got.Data) != fmt.Sprint(i) {
			t.Fatalf("key %q: data %q, want %d", k, got.Data, i)
		}
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if got := keysOf(t, s, "weird#kind/with:chars", bot.KeyRange{}, 0); !slices.Equal(got, want) {
		t.Fatalf("List = %q, want byte order %q", got, want)
	}
	if got := keysOf(t, s, "weird#kind/with:chars", bot.PrefixRange("a/"), 0); !slices.Equal(got, []string{"a//b", "a/b/c"}) {
		t.Fatalf("List(prefix a/) = %q", got)
	}
}

func testDocuments(t *testing.T, s bot.Store) {
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(rng.UintN(256))
	}
	docs := map[string][]byte{
		"empty":  {},
		"binary": {0, 0xff, 0xfe, 0, '\n', 0x80},
		"json":   []byte(`{"who":"U123","why":"investigating \u003c5xx\u003e"}`),
		"300KB":  big,
	}
	for name, data := range docs {
		mustPut(t, s, bot.Record{Kind: "doc", Key: name, Data: data}, 1)
		if got := mustGet(t, s, "doc", name); !bytes.Equal(got.Data, data) {
			t.Fatalf("%s: read back %d bytes that differ from the %d written", name, len(got.Data), len(data))
		}
	}
	recs, err := s.List(t.Context(), "doc", bot.PrefixRange("300"), 0)
	if err != nil || len(recs) != 1 || !bytes.Equal(recs[0].Data, big) {
		t.Fatalf("List of the 300 KB document: %d records, err %v", len(recs), err)
	}

	// Above the limit: a clear error, not a conflict, and nothing stored.
	huge := make([]byte, 1<<20)
	_, err = s.Put(t.Context(), bot.Record{Kind: "doc", Key: "huge", Data: huge})
	if err == nil || errors.Is(err, bot.ErrConflict) {
		t.Fatalf("Put of a 1 MiB document: err = %v, want a size error", err)
	}
	mustBeAbsent(t, s, "doc", "huge")
	_, err = s.Put(t.Context(), bot.Record{Kind: "doc", Key: "300KB", Version: 1, Data: huge})
	if err == nil || errors.Is(err, bot.ErrConflict) {
		t.Fatalf("update to a 1 MiB document: err = %v, want a size error", err)
	}
	if got := mustGet(t, s, "doc", "300KB"); got.Version != 1 {
		t.Fatalf("failed oversize update changed the record to version %d", got.Version)
	}
}

func testInvalidInput(t *testing.T, s bot.Store) {
	ctx := t.Context()
	tooLong := strings.Repeat("x", MaxKeyBytes+1)
	tests := []struct {
		name      string
		kind, key string
	}{
		{"empty kind", "", "k"},
		{"empty key", "request", ""},
		{"key too long", "request", tooLong},
		{"kind too long", tooLong, "k"},
		{"key not UTF-8", "request", "bad\xffkey"},
		{"kind not UTF-8", "bad\xc3", "k"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Put(ctx, bot.Record{Kind: tc.kind, Key: tc.key, Data: []byte("x")}); err == nil || errors.Is(err, bot.ErrConflict) {
				t.Errorf("Put: err = %v, want a validation error", err)
			}
			if _, err := s.Get(ctx, tc.kind, tc.key); err == nil {
				t.Errorf("Get: no error")
			}
			if err := s.Delete(ctx, tc.kind, tc.key, 1); err == nil || errors.Is(err, bot.ErrConflict) {
				t.Errorf("Delete: err = %v, want a validation error", err)
			}
		})
	}
	if _, err := s.Put(ctx, bot.Record{Kind: "request", Key: "neg", Version: -1}); err == nil || errors.Is(err, bot.ErrConflict) {
		t.Errorf("Put with version -1: err = %v, want a validation error", err)
	}
	if _, err := s.List(ctx, "", bot.KeyRange{}, 0); err == nil {
		t.Errorf("List with an empty kind: no error")
	}
}

func testCancelledContext(t *testing.T, s bot.Store) {
	mustPut(t, s, bot.Record{Kind: "request", Key: "there", Data: []byte("x")}, 1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v, want one matching context.Canceled", op, err)
		}
	}
	_, err := s.Get(ctx, "request", "there")
	check("Get", err)
	_, err = s.Put(ctx, bot.Record{Kind: "request", Key: "new", Data: []byte("x")})
	check("Put", err)
	_, err = s.List(ctx, "request", bot.KeyRange{}, 0)
	check("List", err)
	check("Delete", s.Delete(ctx, "request", "there", 0))

	mustBeAbsent(t, s, "request", "new")
	mustGet(t, s, "request", "there")
}
