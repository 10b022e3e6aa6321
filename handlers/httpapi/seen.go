package httpapi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tokken/tokken/bot"
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
	first(ctx context.Context, key string) (bool, error)
	// forget removes key, so that a retry of a failed delivery runs.
	forget(ctx context.Context, key string) error
}

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
// A restart empties it: a request the previous process ran can run again
// if it is replayed after the restart while its signature is still inside
// slacksig's 5-minute window (Slack itself does not resend commands or
// clicks, and an Events API retry after a restart is one the previous
// process did not finish acknowledging). The window bounds that exposure
// to the first five minutes after a start, for requests captured in the
// five minutes before it.
type memoryDeliveries struct {
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	until map[string]time.Time // key → when it may be forgotten
	order []seenEntry          // every add, oldest first: ttl is constant, so also in expiry order
}

type seenEntry struct {
	key   string
	until time.Time
}

func newMemoryDeliveries(ttl time.Duration, now func() time.Time) *memoryDeliveries {
	return &memoryDeliveries{ttl: ttl, now: now, until: map[string]time.Time{}}
}

func (m *memoryDeliveries) first(_ context.Context, key string) (bool, error) {
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
