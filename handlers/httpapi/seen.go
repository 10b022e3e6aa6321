package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/slacksig"
)

// ProcessExclusive is implemented by a bot.Store that no other process can
// write while this one has it open (infra/boltstore: bbolt locks the file).
// NewRouter then remembers deliveries in memory instead of writing a store
// record per request; see Router for what that guarantees.
type ProcessExclusive interface {
	// ProcessExclusive reports whether only this process can write the
	// store.
	ProcessExclusive() bool
}

// deliveries remembers which Slack deliveries ran, so that a repeated one
// (a replayed request, a redelivery, a double click) has no second effect.
type deliveries interface {
	// first records key and reports whether this is its first delivery.
	// It fails with errSignedBeforeStart when it cannot tell.
	first(ctx context.Context, key string) (bool, error)
	// forget removes key, so that a retry of a failed delivery runs.
	forget(ctx context.Context, key string) error
}

// errSignedBeforeStart refuses a request signed before the in-memory
// delivery record began: a previous process may have run it.
var errSignedBeforeStart = errors.New("request signed before this process began recording deliveries")

// storeDeliveries records each delivery as a create-only store record
// (KindSeen, expiring after SeenTTL). It is what a store shared between
// processes needs: every Lambda instance sees every other's deliveries,
// and a restart forgets nothing.
type storeDeliveries struct{ store bot.Store }

func (s storeDeliveries) first(ctx context.Context, key string) (bool, error) {
	_, err := s.store.Put(ctx, bot.Record{Kind: KindSeen, Key: key, Data: []byte(`{}`), ExpiresAt: time.Now().Add(SeenTTL)})
	if errors.Is(err, bot.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record delivery %s: %w", key, err)
	}
	return true, nil
}

func (s storeDeliveries) forget(ctx context.Context, key string) error {
	if err := s.store.Delete(ctx, KindSeen, key, 0); err != nil {
		return fmt.Errorf("forget delivery %s: %w", key, err)
	}
	return nil
}

// memoryDeliveries keeps delivery keys in memory for ttl: a map lookup
// instead of a store transaction (with a bbolt store, a commit and an
// fdatasync) on every slash command and click. It is only correct when
// this process is the only one receiving the traffic, which a
// ProcessExclusive store guarantees for `tokken serve`.
//
// A restart empties it. What a previous process ran can then only come
// back as a request signed before this one started (Slack does not resend
// commands or clicks; an Events API retry is signed anew), so first refuses
// requests whose verified signature predates since — the 5-minute signature
// window means this only happens in the first minutes after a start. The
// comparison is in whole seconds of the host clock against Slack's: a
// replay of a request signed in the very second of the restart, or within
// the host clock's lag behind Slack's, is not caught. Requests without a
// signature time (Socket Mode, where nothing can be replayed from outside)
// are deduplicated within the process only.
type memoryDeliveries struct {
	ttl   time.Duration
	since int64 // Unix second the record began
	now   func() time.Time

	mu    sync.Mutex
	until map[string]time.Time // key → when it may be forgotten
	order []seenEntry          // every add, oldest first: ttl is constant, so also in expiry order
}

type seenEntry struct {
	key   string
	until time.Time
}

func newMemoryDeliveries(ttl time.Duration, now func() time.Time) *memoryDeliveries {
	return &memoryDeliveries{ttl: ttl, since: now().Unix(), now: now, until: map[string]time.Time{}}
}

func (m *memoryDeliveries) first(ctx context.Context, key string) (bool, error) {
	if at, ok := signedAt(ctx); ok && at < m.since {
		return false, errSignedBeforeStart
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(now)
	if until, ok := m.until[key]; ok && until.After(now) {
		return false, nil
	}
	until := now.Add(m.ttl)
	m.until[key] = until
	m.order = append(m.order, seenEntry{key: key, until: until})
	return true, nil
}

func (m *memoryDeliveries) forget(_ context.Context, key string) error {
	m.mu.Lock()
	delete(m.until, key)
	m.mu.Unlock()
	return nil
}

// expire drops the entries whose time is up: the oldest are at the front
// of order, so each entry is looked at once. An entry whose key was
// forgotten and recorded again has a later time in the map and stays.
func (m *memoryDeliveries) expire(now time.Time) {
	n := 0
	for ; n < len(m.order) && !m.order[n].until.After(now); n++ {
		e := m.order[n]
		if until, ok := m.until[e.key]; ok && until.Equal(e.until) {
			delete(m.until, e.key)
		}
		m.order[n] = seenEntry{} // let the key be collected
	}
	m.order = m.order[n:]
}

// len reports how many deliveries are remembered (for tests).
func (m *memoryDeliveries) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.until)
}

type signedAtKey struct{}

// withSignedAt passes the verified signature time of a Slack request
// (X-Slack-Request-Timestamp, Unix seconds) to the Router in the request's
// context. It runs after slacksig verification, so the header is present
// and well-formed; anything else passes no time.
func withSignedAt(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ts, err := strconv.ParseInt(r.Header.Get(slacksig.HeaderTimestamp), 10, 64); err == nil {
			r = r.WithContext(context.WithValue(r.Context(), signedAtKey{}, ts))
		}
		next.ServeHTTP(w, r)
	})
}

// signedAt returns the verified signature time ctx carries, if any.
func signedAt(ctx context.Context) (int64, bool) {
	ts, ok := ctx.Value(signedAtKey{}).(int64)
	return ts, ok
}
