package instindex_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/infra/ec2fleet"
	"github.com/tokken/tokken/infra/instindex"
	"github.com/tokken/tokken/testkit/awsfake"
)

const (
	web1   = "i-0123456789abcdef0" // web-01, running, windows
	web2   = "i-0aaaaaaaaaaaaaaa2" // Web-02, stopped
	db1    = "i-0bbbbbbbbbbbbbbb1" // db-01, running
	legacy = "i-0ccccccccccccccc3" // WEB-legacy, terminated
	noname = "i-0abcd0000000000f1" // no Name tag, running
	mixed  = "i-0eeeeeeeeeeeeeee5" // wEb-03, running: EC2's case-sensitive filters miss it
	odd    = "i-0ffffffffffffff06" // odd*name, running
)

// countingStore counts the writes that reach the store.
type countingStore struct {
	bot.Store
	puts, deletes atomic.Int64
}

func (s *countingStore) Put(ctx context.Context, r bot.Record) (int64, error) {
	s.puts.Add(1)
	return s.Store.Put(ctx, r)
}

func (s *countingStore) Delete(ctx context.Context, kind, key string, version int64) error {
	s.deletes.Add(1)
	return s.Store.Delete(ctx, kind, key, version)
}

func (s *countingStore) reset() { s.puts.Store(0); s.deletes.Store(0) }

type world struct {
	aws   *awsfake.Fake
	fleet *ec2fleet.Fleet
	store *countingStore
}

func newWorld(t *testing.T) *world {
	t.Helper()
	f := awsfake.New(t)
	for _, in := range []awsfake.Instance{
		{ID: web1, Name: "web-01", Platform: "windows", Tags: map[string]string{"env": "prod"}},
		{ID: web2, Name: "Web-02", State: "stopped", Tags: map[string]string{"env": "prod"}},
		{ID: db1, Name: "db-01", Tags: map[string]string{"env": "staging"}},
		{ID: legacy, Name: "WEB-legacy", State: "terminated"},
		{ID: noname},
		{ID: mixed, Name: "wEb-03"},
		{ID: odd, Name: "odd*name"},
	} {
		f.EC2().AddInstance(in)
	}
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "tokken.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &world{aws: f, fleet: ec2fleet.New(f.Config(context.Background())), store: &countingStore{Store: s}}
}

func (w *world) refresh(t *testing.T) int {
	t.Helper()
	n, err := instindex.Refresh(context.Background(), w.fleet, w.store)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return n
}

// entries reads the index back from the store.
func (w *world) entries(t *testing.T) map[string]bot.Versioned[instindex.Entry] {
	t.Helper()
	vs, err := bot.Table[instindex.Entry]{Store: w.store, Kind: instindex.Kind}.List(context.Background(), bot.KeyRange{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bot.Versioned[instindex.Entry]{}
	for _, v := range vs {
		out[v.Key] = v
	}
	return out
}

func ids(ts []bot.Target) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func TestRefreshIndexesLiveInstances(t *testing.T) {
	w := newWorld(t)
	before := time.Now()
	if n := w.refresh(t); n != 6 {
		t.Errorf("Refresh = %d, want the 6 live instances", n)
	}
	got := w.entries(t)
	if want := []string{web1, noname, web2, db1, mixed, odd}; !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("indexed %v, want %v (terminated left out)", slices.Sorted(maps.Keys(got)), want)
	}
	e := got[web1]
	if e.Value.ID != web1 || e.Value.Name != "web-01" || e.Value.State != "running" || e.Value.Platform != "windows" ||
		e.Value.Tags["env"] != "prod" || e.Value.Tags["Name"] != "web-01" {
		t.Errorf("web-01 indexed as %+v", e.Value)
	}
	if e.Value.RefreshedAt.Before(before) || e.Value.RefreshedAt.After(time.Now()) {
		t.Errorf("refreshed_at %v is not the refresh's time", e.Value.RefreshedAt)
	}
	if exp := e.ExpiresAt.Sub(e.Value.RefreshedAt); exp != instindex.TTL {
		t.Errorf("entry expires %v after its refresh, want %v", exp, instindex.TTL)
	}
	if got[web2].Value.State != "stopped" {
		t.Errorf("Web-02 indexed as %+v", got[web2].Value)
	}
}

func TestRefreshPaginates(t *testing.T) {
	w := newWorld(t)
	for i := range 1100 {
		w.aws.EC2().AddInstance(awsfake.Instance{ID: fmt.Sprintf("i-1%016x", i), Name: fmt.Sprintf("app-%04d", i)})
	}
	if n := w.refresh(t); n != 1106 {
		t.Errorf("Refresh = %d, want 1,106", n)
	}
	if calls := w.aws.Calls(awsfake.EC2Service, "DescribeInstances"); len(calls) != 2 {
		t.Errorf("%d DescribeInstances calls, want two pages", len(calls))
	}
	if got := w.entries(t); len(got) != 1106 || got["i-1000000000000044b"].Value.Name != "app-1099" {
		t.Errorf("indexed %d instances; the last page's app-1099 is %+v", len(got), got["i-1000000000000044b"].Value)
	}
	w.store.reset()
	w.refresh(t)
	if p, d := w.store.puts.Load(), w.store.deletes.Load(); p != 0 || d != 0 {
		t.Errorf("a refresh with nothing changed wrote %d and deleted %d entries", p, d)
	}
}

func TestRefreshFollowsChanges(t *testing.T) {
	w := newWorld(t)
	w.refresh(t)
	first := w.entries(t)

	w.aws.EC2().SetState(db1, "terminated")                // gone
	w.aws.EC2().SetTag(web1, "env", "staging")             // retagged
	w.aws.EC2().SetTag(noname, "Name", "named-later")      // named
	w.aws.EC2().SetState(web2, "running")                  // started
	w.aws.EC2().AddInstance(awsfake.Instance{ID: legacy2}) // launched
	w.store.reset()
	if n := w.refresh(t); n != 6 {
		t.Errorf("Refresh = %d, want 6", n)
	}
	if p, d := w.store.puts.Load(), w.store.deletes.Load(); p != 4 || d != 1 {
		t.Errorf("refresh wrote %d and deleted %d entries, want 4 changed and 1 removed", p, d)
	}
	got := w.entries(t)
	if _, ok := got[db1]; ok {
		t.Errorf("terminated db-01 still indexed: %+v", got[db1].Value)
	}
	if got[web1].Value.Tags["env"] != "staging" || got[web1].Version != first[web1].Version+1 {
		t.Errorf("retagged web-01 indexed as %+v (version %d)", got[web1].Value, got[web1].Version)
	}
	if got[noname].Value.Name != "named-later" || got[web2].Value.State != "running" {
		t.Errorf("renamed %+v, started %+v", got[noname].Value, got[web2].Value)
	}
	if _, ok := got[legacy2]; !ok {
		t.Error("the new instance is not indexed")
	}
	if got[mixed].Version != first[mixed].Version || !got[mixed].Value.RefreshedAt.Equal(first[mixed].Value.RefreshedAt) {
		t.Errorf("unchanged wEb-03 was rewritten: %+v", got[mixed])
	}
	res, err := instindex.Search(context.Background(), w.store, "01", 0)
	if err != nil || !slices.Equal(ids(res), []string{web1}) {
		t.Errorf(`Search("01") after db-01 terminated = %v, %v`, ids(res), err)
	}
}

const legacy2 = "i-0dddddddddddddd07"

func TestRefreshRemovesAndRepairsStoredEntries(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// An entry of an instance EC2 no longer knows at all, and one that
	// does not decode.
	for _, r := range []bot.Record{
		{Kind: instindex.Kind, Key: "i-0999999999999999a", Data: []byte(`{"id":"i-0999999999999999a","name":"ghost","state":"running"}`)},
		{Kind: instindex.Kind, Key: web1, Data: []byte(`{"id":`)},
	} {
		if _, err := w.store.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := instindex.Search(ctx, w.store, "", 0); err != nil || !slices.Equal(ids(res), []string{"i-0999999999999999a"}) {
		t.Errorf("Search over a damaged index = %v, %v; want the decodable entry only", ids(res), err)
	}
	w.refresh(t)
	got := w.entries(t)
	if _, ok := got["i-0999999999999999a"]; ok {
		t.Error("the entry of an unknown instance survived a refresh")
	}
	if got[web1].Value.Name != "web-01" {
		t.Errorf("the undecodable entry was not rewritten: %+v", got[web1])
	}
}

func TestRefreshFailureKeepsIndex(t *testing.T) {
	w := newWorld(t)
	w.refresh(t)
	w.aws.Fail(awsfake.EC2Service, "DescribeInstances", 50, awsfake.Internal)
	w.aws.EC2().SetState(db1, "terminated")
	if _, err := instindex.Refresh(context.Background(), w.fleet, w.store); err == nil {
		t.Fatal("Refresh succeeded while EC2 failed")
	}
	if got := w.entries(t); len(got) != 6 {
		t.Errorf("a failed refresh changed the index to %d entries", len(got))
	}
}

func TestConcurrentRefreshes(t *testing.T) {
	w := newWorld(t)
	for i := range 200 {
		w.aws.EC2().AddInstance(awsfake.Instance{ID: fmt.Sprintf("i-1%016x", i), Name: fmt.Sprintf("app-%03d", i)})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() {
			_, err := instindex.Refresh(context.Background(), w.fleet, w.store)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Refresh: %v", err)
		}
	}
	if got := w.entries(t); len(got) != 206 {
		t.Errorf("indexed %d instances, want 206", len(got))
	}
}

func TestSearchRanking(t *testing.T) {
	w := newWorld(t)
	w.refresh(t)
	cases := []struct {
		query string
		want  []string
	}{
		{"web", []string{web1, mixed, web2}},                // running first; terminated WEB-legacy left out
		{"WEB", []string{web1, mixed, web2}},                // case-insensitive, wEb-03 included
		{"  Web-0 ", []string{web1, mixed, web2}},           // trimmed
		{"eb-0", []string{web1, mixed, web2}},               // substring: running by name, then stopped
		{"01", []string{db1, web1}},                         // substring, running, by name
		{"i-0abcd", []string{noname}},                       // id prefix
		{"I-0A", []string{noname, web2}},                    // id prefix, any case; running first
		{"odd*", []string{odd}},                             // no wildcards
		{"nothing-like-this", []string{}},                   // no match
		{"", []string{db1, odd, web1, mixed, noname, web2}}, // everything live: running by name, unnamed, then stopped
		{"i-0123456789abcdef0", []string{web1}},             // a full id
		{"i-0123456789abcdef0 ", []string{web1}},            // with a trailing space
		{"web-legacy", []string{}},                          // terminated instances are not offered
	}
	for _, tc := range cases {
		got, err := instindex.Search(context.Background(), w.store, tc.query, 0)
		if err != nil {
			t.Errorf("Search(%q): %v", tc.query, err)
			continue
		}
		if !slices.Equal(ids(got), tc.want) {
			t.Errorf("Search(%q) = %v, want %v", tc.query, ids(got), tc.want)
		}
	}
	got, _ := instindex.Index{Store: w.store}.Search(context.Background(), "web-01", 0)
	if len(got) != 1 || got[0].Tags["env"] != "prod" || got[0].Tags["Name"] != "web-01" {
		t.Errorf("Index.Search result carries tags %v", got)
	}
}

// TestSearchAgreesWithEC2 checks that the index and the live EC2 search
// rank alike wherever EC2's case-sensitive filters can find the instances.
func TestSearchAgreesWithEC2(t *testing.T) {
	w := newWorld(t)
	w.refresh(t)
	// ("odd*", not "odd": awsfake's wildcard matcher takes a literal * in a
	// tag value for the pattern's *, so "*odd*" misses "odd*name" there.)
	for _, q := range []string{"web-0", "db", "01", "i-0a", "", "odd*"} {
		fromEC2, err1 := w.fleet.Search(context.Background(), q, 0)
		fromIndex, err2 := instindex.Search(context.Background(), w.store, q, 0)
		if err1 != nil || err2 != nil {
			t.Fatalf("Search(%q): %v, %v", q, err1, err2)
		}
		want := ids(fromIndex)
		if q != "" { // EC2 lists wEb-03 only when no Name filter is involved
			want = slices.DeleteFunc(want, func(id string) bool { return id == mixed })
		}
		if !slices.Equal(ids(fromEC2), want) {
			t.Errorf("Search(%q): EC2 %v, index %v", q, ids(fromEC2), ids(fromIndex))
		}
	}
}

func TestSearchCaps(t *testing.T) {
	w := newWorld(t)
	for i := range 130 {
		w.aws.EC2().AddInstance(awsfake.Instance{ID: fmt.Sprintf("i-1%016x", i), Name: fmt.Sprintf("app-%03d", i)})
	}
	w.refresh(t)
	for _, tc := range []struct{ limit, want int }{{0, 100}, {500, 100}, {25, 25}} {
		got, err := instindex.Search(context.Background(), w.store, "APP", tc.limit)
		if err != nil || len(got) != tc.want {
			t.Errorf("Search(APP, %d) = %d results, %v; want %d", tc.limit, len(got), err, tc.want)
		}
	}
	got, _ := instindex.Search(context.Background(), w.store, "app", 3)
	if !slices.Equal(ids(got), []string{"i-10000000000000000", "i-10000000000000001", "i-10000000000000002"}) {
		t.Errorf("first three apps = %v", ids(got))
	}
}

func TestEntryJSON(t *testing.T) {
	w := newWorld(t)
	w.refresh(t)
	rec, err := w.store.Get(context.Background(), instindex.Kind, web1)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "name", "state", "platform", "tags", "refreshed_at"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("stored entry %s lacks %q", rec.Data, k)
		}
	}
}

func TestRank(t *testing.T) {
	fleet := []domainjoin.Instance{
		{ID: "i-0000000000000000a", Name: "web-01", State: "running"},
		{ID: "i-0000000000000000b", Name: "Web-02", State: "stopped"},
		{ID: "i-0000000000000000c", Name: "my-web", State: "running"},
		{ID: "i-0000000000000000d", Name: "web-old", State: "terminated"},
		{ID: "i-0000000000000000e", Name: "wEb-03", State: "shutting-down"},
		{ID: "i-0000000000000000f", State: "running"},
	}
	cases := []struct {
		query string
		limit int
		want  []string
	}{
		{"web", 0, []string{"i-0000000000000000a", "i-0000000000000000c", "i-0000000000000000b"}}, // running prefix, running substring, stopped
		{"  WEB-0 ", 0, []string{"i-0000000000000000a", "i-0000000000000000b"}},
		{"I-0000000000000000F", 0, []string{"i-0000000000000000f"}},
		{"", 0, []string{"i-0000000000000000c", "i-0000000000000000a", "i-0000000000000000f", "i-0000000000000000b"}},
		{"", 2, []string{"i-0000000000000000c", "i-0000000000000000a"}},
		{"old", 0, []string{}}, // only terminated matches
	}
	for _, tc := range cases {
		if got := instindex.Rank(tc.query, fleet, tc.limit); !slices.Equal(ids(got), tc.want) {
			t.Errorf("Rank(%q, %d) = %v, want %v", tc.query, tc.limit, ids(got), tc.want)
		}
	}
}
