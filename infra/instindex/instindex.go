// Package instindex keeps an index of the EC2 fleet in tokken's store, so
// that the instance search behind Slack's external selects (the access
// modal's instance picker) is answered by the ingress from the store alone.
// The ingress has no EC2 permission by design (template.yaml), and Slack
// wants the options answer within 3 seconds, synchronously, so the search
// cannot go through the job queue either.
//
// The worker keeps the index: [Refresh] lists the live instances through
// infra/ec2fleet and writes one record per instance (kind [Kind], key the
// instance id) with a housekeeping expiry of [TTL]; it removes the records
// of instances that are gone. The ingress reads it: [Search] (or [Index] as
// a searcher) matches and ranks with [Rank], the one definition of the
// instance search. The package links no EC2 client: the ingress has none.
//
// Staleness: the index is as fresh as the last successful refresh. tokken
// refreshes on every reconcile sweep (every 5 minutes) and when the worker
// starts, so an instance launched, renamed, retagged, stopped or terminated
// shows up in the search within one sweep. If refreshing stops (the worker
// lost its EC2 permission, say), entries vanish [TTL] after the last
// refresh that saw them instead of being offered forever. The index only
// helps people pick: what they submit is checked against EC2 by the worker
// (access.Inventory), so a stale entry can never grant access to an
// instance that no longer qualifies.
package instindex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"sync"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/domainjoin"
)

// Kind is the store kind of index entries; the key is the instance id.
const Kind = "instance"

// TTL is the housekeeping expiry of an entry: an instance no refresh has
// seen for that long disappears from the search even if nobody removes it.
// It spans many sweeps, so one failed refresh empties nothing.
const TTL = time.Hour

// writers bounds the store writes one refresh runs at once: enough to
// write a large fleet's first index within the worker's timeout, few enough
// not to exhaust a DynamoDB table's write capacity.
const writers = 8

// Entry is one indexed instance: what DescribeInstances said about it
// (id, Name tag, state, platform, tags) and when that was written.
type Entry struct {
	domainjoin.Instance
	// RefreshedAt is when a refresh last wrote the entry. A refresh
	// rewrites an entry when the instance changed, and otherwise only to
	// renew its expiry (every 30 to 45 minutes), so an unchanged entry may
	// carry an older time than the last refresh that confirmed it.
	RefreshedAt time.Time `json:"refreshed_at"`
}

// Lister lists the live EC2 instances (pending, running, stopping,
// stopped); *ec2fleet.Fleet is the implementation.
type Lister interface {
	List(ctx context.Context) ([]domainjoin.Instance, error)
}

// Refresh makes the index in store match the live instances fleet lists:
// it writes an entry for each instance that is new or changed (name,
// state, platform or tags), renews the expiry of unchanged entries that
// have used half of their [TTL] or more, and deletes the entries of
// instances that are no longer listed (terminated, or gone). It returns how
// many live instances the index now holds.
//
// A refresh that finds nothing changed costs the listing and one read of
// the index, and writes nothing except the occasional renewal. Writes are
// conditional on the version read, so two refreshes running at once (a
// sweep and a start-up refresh) do not undo each other; the one that loses
// leaves the record to the winner. On an error the index keeps what was
// written so far, and the next refresh completes it.
func Refresh(ctx context.Context, fleet Lister, store bot.Store) (int, error) {
	return refresh(ctx, fleet, store, time.Now())
}

func refresh(ctx context.Context, fleet Lister, store bot.Store, now time.Time) (int, error) {
	live, err := fleet.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("refresh instance index: %w", err)
	}
	old, err := load(ctx, store)
	if err != nil {
		return 0, fmt.Errorf("refresh instance index: %w", err)
	}
	var ops []func(context.Context) error
	for _, in := range live {
		cur, had := old[in.ID]
		delete(old, in.ID)
		if had && cur.valid && same(cur.entry.Instance, in) && cur.expires.Sub(now) > renewWithin(in.ID) {
			continue
		}
		e := Entry{Instance: in, RefreshedAt: now}
		ops = append(ops, func(ctx context.Context) error { return put(ctx, store, e, cur.version, now.Add(TTL)) })
	}
	for id, cur := range old {
		ops = append(ops, func(ctx context.Context) error {
			if err := store.Delete(ctx, Kind, id, cur.version); err != nil && !errors.Is(err, bot.ErrConflict) {
				return fmt.Errorf("remove instance %s: %w", id, err)
			}
			return nil
		})
	}
	if err := run(ctx, ops); err != nil {
		return 0, fmt.Errorf("refresh instance index: %w", err)
	}
	return len(live), nil
}

// Search returns up to limit indexed instances matching query, chosen and
// ordered by [Rank] exactly as ec2fleet's live search does (id prefix or
// Name substring, ignoring case; running first; at most
// [MaxSearchResults]). Unlike EC2's case-sensitive filters, a Name
// in any mixed case is found. It reads the store only, once; the answer is
// as fresh as the last refresh (see the package documentation). An entry
// that does not decode is skipped; the next refresh rewrites it.
func Search(ctx context.Context, store bot.Store, query string, limit int) ([]bot.Target, error) {
	entries, err := load(ctx, store)
	if err != nil {
		return nil, fmt.Errorf("search instance index: %w", err)
	}
	cands := make([]domainjoin.Instance, 0, len(entries))
	for _, e := range entries {
		if e.valid {
			cands = append(cands, e.entry.Instance)
		}
	}
	return Rank(query, cands, limit), nil
}

// Index is the instance index of a store as a searcher: it answers the
// access modal's instance select (accessui.Searcher) without AWS.
type Index struct{ Store bot.Store }

// Search is [Search] on x.Store.
func (x Index) Search(ctx context.Context, query string, limit int) ([]bot.Target, error) {
	return Search(ctx, x.Store, query, limit)
}

// stored is an index record as read: its version and expiry, and the
// entry when it decoded.
type stored struct {
	version int64
	expires time.Time
	entry   Entry
	valid   bool
}

// load reads every live index record, keyed by instance id.
func load(ctx context.Context, store bot.Store) (map[string]stored, error) {
	recs, err := store.List(ctx, Kind, bot.KeyRange{}, 0)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", Kind, err)
	}
	out := make(map[string]stored, len(recs))
	for _, r := range recs {
		s := stored{version: r.Version, expires: r.ExpiresAt}
		s.valid = json.Unmarshal(r.Data, &s.entry) == nil && s.entry.ID == r.Key
		out[r.Key] = s
	}
	return out, nil
}

// put writes e over version (0: create) with the given expiry. Losing to a
// concurrent refresh is not an error: the winner wrote the same listing or
// a newer one.
func put(ctx context.Context, store bot.Store, e Entry, version int64, expires time.Time) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode instance %s: %w", e.ID, err)
	}
	_, err = store.Put(ctx, bot.Record{Kind: Kind, Key: e.ID, Version: version, Data: data, ExpiresAt: expires})
	if err != nil && !errors.Is(err, bot.ErrConflict) {
		return fmt.Errorf("index instance %s: %w", e.ID, err)
	}
	return nil
}

// same reports whether an indexed instance still says what EC2 says.
func same(a, b domainjoin.Instance) bool {
	return a.ID == b.ID && a.Name == b.Name && a.State == b.State && a.Platform == b.Platform && maps.Equal(a.Tags, b.Tags)
}

// renewWithin is how much remaining life makes a refresh renew an unchanged
// entry: between a quarter and a half of TTL, fixed per instance, so that
// the renewals of a fleet indexed at once spread over a quarter hour
// instead of all falling on the same sweep.
func renewWithin(id string) time.Duration {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id)) // hash.Hash writes never fail
	return TTL/2 - time.Duration(h.Sum32()%uint32(TTL/4/time.Second))*time.Second
}

// run runs ops with at most writers of them at once and returns the first
// error, after which no further op starts.
func run(ctx context.Context, ops []func(context.Context) error) error {
	if len(ops) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan func(context.Context) error)
	var wg sync.WaitGroup
	for range min(writers, len(ops)) {
		wg.Go(func() {
			for op := range next {
				if err := op(ctx); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for _, op := range ops {
		select {
		case next <- op:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}
