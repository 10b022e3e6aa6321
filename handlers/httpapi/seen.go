package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
// With persist, the keys are also saved behind the ack: at most once per
// SeenFlushEvery, everything recorded since the last save goes into one
// KindSeenBatch record (one store commit per second, not per request), and
// a new process loads the live batches at start. A restart therefore
// forgets only what arrived in the last SeenFlushEvery before a crash
// (nothing on a clean shutdown, which calls Close); such a request could run
// again if replayed while its signature is inside slacksig's 5-minute
// window, and the features' own versioned state still stands against a
// second effect.
type memoryDeliveries struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	until   map[string]time.Time // key → when it may be forgotten
	order   []seenEntry          // every add, oldest first: ttl is constant, so also in expiry order
	store   bot.Store            // nil: memory only
	log     *slog.Logger
	unsaved []seenEntry // recorded since the last save
	timer   *time.Timer // pending save, nil when none
}

type seenEntry struct {
	Key   string    `json:"k"`
	Until time.Time `json:"u"`
}

// KindSeenBatch holds the delivery keys a process-exclusive Router saved
// together (see memoryDeliveries).
const KindSeenBatch = "seen-batch"

// SeenFlushEvery is how often remembered deliveries are saved to a
// process-exclusive store.
const SeenFlushEvery = time.Second

// persist loads the deliveries saved by earlier processes from store and
// saves new ones there from now on.
func (m *memoryDeliveries) persist(ctx context.Context, store bot.Store, log *slog.Logger) error {
	recs, err := store.List(ctx, KindSeenBatch, bot.KeyRange{}, 0)
	if err != nil {
		return fmt.Errorf("load remembered deliveries: %w", err)
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rec := range recs {
		var batch []seenEntry
		if err := json.Unmarshal(rec.Data, &batch); err != nil {
			log.WarnContext(ctx, "skipping an unreadable batch of remembered deliveries", "key", rec.Key, "err", err)
			continue
		}
		for _, e := range batch {
			if e.Until.After(now) && e.Until.After(m.until[e.Key]) {
				m.until[e.Key] = e.Until
				m.order = append(m.order, e)
			}
		}
	}
	slices.SortFunc(m.order, func(a, b seenEntry) int { return a.Until.Compare(b.Until) })
	m.store, m.log = store, log
	return nil
}

// save writes the deliveries recorded since the last save as one record.
func (m *memoryDeliveries) save(ctx context.Context) error {
	m.mu.Lock()
	batch := make([]seenEntry, 0, len(m.unsaved))
	var last time.Time
	for _, e := range m.unsaved {
		if m.until[e.Key].Equal(e.Until) { // not forgotten since
			batch = append(batch, e)
			last = e.Until
		}
	}
	m.unsaved, m.timer = nil, nil
	store := m.store
	m.mu.Unlock()
	if len(batch) == 0 || store == nil {
		return nil
	}
	data, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("save remembered deliveries: %w", err)
	}
	key := fmt.Sprintf("%020d-%s", m.now().UnixNano(), bot.NewID(""))
	if _, err := store.Put(ctx, bot.Record{Kind: KindSeenBatch, Key: key, Data: data, ExpiresAt: last}); err != nil {
		return fmt.Errorf("save %d remembered deliveries: %w", len(batch), err)
	}
	return nil
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
	e := seenEntry{Key: key, Until: now.Add(m.ttl)}
	m.until[key] = e.Until
	m.order = append(m.order, e)
	if m.store != nil {
		m.unsaved = append(m.unsaved, e)
		if m.timer == nil {
			m.timer = time.AfterFunc(SeenFlushEvery, func() {
				if err := m.save(context.Background()); err != nil {
					m.log.Warn("remembered deliveries not saved: a restart may forget them", "err", err)
				}
			})
		}
	}
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
	for ; n < len(m.order) && !m.order[n].Until.After(now); n++ {
		e := m.order[n]
		if until, ok := m.until[e.Key]; ok && until.Equal(e.Until) {
			delete(m.until, e.Key)
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
