// Package boltstore is the embedded bot.Store: one bbolt file on local disk,
// for `tokken serve` on a laptop or a single host with no AWS account.
//
// Each kind is a bbolt bucket; each key in it holds the record's version,
// expiry and data (see encode). Every Put and Delete is a read-check-write
// in a bbolt transaction, and bbolt serialises writers, so the conditional
// writes of the bot.Store contract hold across goroutines. Creates made
// while another Put is under way share one transaction, and so one commit
// and fdatasync, with those arriving within BatchDelay (bbolt's DB.Batch);
// each returns once its write is on disk.
// Only one process may open a file at a time: bbolt takes an exclusive
// lock, and Open gives up after a short wait with an error saying the
// store is in use.
//
// Expired records are invisible to reads at once and deleted later: when a
// write replaces them, and by a sweep that runs every SweepInterval until
// Close. The adapter enforces DynamoDB's limits (bot.MaxKeyBytes,
// bot.MaxRecordBytes, valid UTF-8) so that what works locally works on Lambda.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/tokken/tokken/bot"
)

const (
	// DefaultSweepInterval is how often expired records are deleted.
	DefaultSweepInterval = 10 * time.Minute
	// DefaultLockTimeout is how long Open waits for another process to
	// release the file before giving up.
	DefaultLockTimeout = time.Second
	// BatchDelay is how long a create made while another Put is under way
	// waits for others to share its commit (bbolt's DB.Batch). Every
	// commit ends with an fdatasync, and every Slack request creates one
	// record (its delivery): with a commit each, the commits queued behind
	// each other, and they and the goroutines parked on them were half of
	// `tokken serve`'s CPU under load. Shared, the CPU per request at eight
	// in flight falls by half or more (bench/cmd/ackbench). A create alone
	// commits at once: waiting for company that does not come made it 2 ms
	// slower and doubled its CPU. Updates of an existing version commit
	// alone: in a shared commit, concurrent updates of one record all read
	// the same version and all but one would conflict.
	BatchDelay = time.Millisecond
)

// Store is a bot.Store backed by a bbolt file. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	now  func() time.Time
	log  *slog.Logger
	stop context.CancelFunc // ends the sweeper
	wg   sync.WaitGroup
	once sync.Once
	err  error // the result of the first Close
	// puts counts the Puts in progress: a create joins a shared commit
	// only when another Put is under way (see BatchDelay).
	puts atomic.Int32
}

var _ bot.Store = (*Store)(nil)

// Option tunes Open.
type Option func(*options)

type options struct {
	sweepInterval time.Duration
	lockTimeout   time.Duration
	logger        *slog.Logger
	now           func() time.Time
	afterSweep    func(deleted int, err error) // test hook: signals each background sweep
}

// WithSweepInterval sets how often expired records are deleted; d <= 0
// turns the background sweep off (Sweep can still be called).
func WithSweepInterval(d time.Duration) Option {
	return func(o *options) { o.sweepInterval = d }
}

// WithLockTimeout sets how long Open waits for the file lock.
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) { o.lockTimeout = d }
}

// WithLogger sets where the sweeper reports failures (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithClock replaces time.Now for expiry decisions, for tests.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Open opens or creates the store at path. It fails quickly, with an error
// saying so, when another process holds the file.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{
		sweepInterval: DefaultSweepInterval,
		lockTimeout:   DefaultLockTimeout,
		logger:        slog.Default(),
		now:           time.Now,
	}
	for _, opt := range opts {
		opt(&o)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.lockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("store %s is in use by another tokken process (still locked after %s)", path, o.lockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.MaxBatchDelay = BatchDelay
	ctx, stop := context.WithCancel(context.Background())
	s := &Store{db: db, now: o.now, log: o.logger, stop: stop}
	if o.sweepInterval > 0 {
		s.wg.Go(func() { s.sweepEvery(ctx, o.sweepInterval, o.afterSweep) })
	}
	return s, nil
}

// Close stops the sweeper and closes the file. Later calls return the
// first call's result.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.stop()
		s.wg.Wait()
		if err := s.db.Close(); err != nil {
			s.err = fmt.Errorf("close store %s: %w", s.db.Path(), err)
		}
	})
	return s.err
}

// Get returns the live record under (kind, key).
func (s *Store) Get(ctx context.Context, kind, key string) (bot.Record, error) {
	if err := bot.ValidateKey(kind, key); err != nil {
		return bot.Record{}, fmt.Errorf("get: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return bot.Record{}, fmt.Errorf("get %s %q: %w", kind, key, err)
	}
	now := s.now()
	var rec bot.Record
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(kind))
		if b == nil {
			return bot.ErrNotFound
		}
		v, ok, err := decode(b.Get([]byte(key)))
		if err != nil {
			return err
		}
		if !ok || v.expired(now) {
			return bot.ErrNotFound
		}
		rec = v.record(kind, key)
		return nil
	})
	if errors.Is(err, bot.ErrNotFound) {
		return bot.Record{}, bot.ErrNotFound
	}
	if err != nil {
		return bot.Record{}, fmt.Errorf("get %s %q: %w", kind, key, err)
	}
	return rec, nil
}

// Put writes rec if the stored version is rec.Version (0: absent or
// expired) and returns the new version.
func (s *Store) Put(ctx context.Context, rec bot.Record) (int64, error) {
	if err := bot.ValidateRecord(rec); err != nil {
		return 0, fmt.Errorf("put: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("put %s %q: %w", rec.Kind, rec.Key, err)
	}
	now := s.now()
	next := rec.Version + 1
	commit := s.db.Update
	if s.puts.Add(1) > 1 && rec.Version == 0 {
		commit = s.db.Batch // may run the function again, in a new transaction
	}
	defer s.puts.Add(-1)
	err := commit(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(rec.Kind))
		if err != nil {
			return err
		}
		cur, ok, err := decode(b.Get([]byte(rec.Key)))
		if err != nil {
			return err
		}
		var stored int64 // 0: absent or expired
		if ok && !cur.expired(now) {
			stored = cur.version
		}
		if stored != rec.Version {
			return &bot.ConflictError{Kind: rec.Kind, Key: rec.Key, Expected: rec.Version}
		}
		// A cancelled caller must not find its write committed.
		if err := ctx.Err(); err != nil {
			return err
		}
		return b.Put([]byte(rec.Key), encode(next, rec.ExpiresAt, rec.Data))
	})
	var ce *bot.ConflictError
	if errors.As(err, &ce) {
		return 0, ce
	}
	if err != nil {
		return 0, fmt.Errorf("put %s %q: %w", rec.Kind, rec.Key, err)
	}
	return next, nil
}

// Delete removes the record if its version is version (0: any). A missing
// or expired record is already deleted.
func (s *Store) Delete(ctx context.Context, kind, key string, version int64) error {
	if err := bot.ValidateKey(kind, key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if version < 0 {
		return fmt.Errorf("delete %s %q: negative version %d", kind, key, version)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s %q: %w", kind, key, err)
	}
	now := s.now()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(kind))
		if b == nil {
			return nil
		}
		cur, ok, err := decode(b.Get([]byte(key)))
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if version != 0 && !cur.expired(now) && cur.version != version {
			return &bot.ConflictError{Kind: kind, Key: key, Expected: version}
		}
		return b.Delete([]byte(key))
	})
	var ce *bot.ConflictError
	if errors.As(err, &ce) {
		return ce
	}
	if err != nil {
		return fmt.Errorf("delete %s %q: %w", kind, key, err)
	}
	return nil
}

// List returns the live records of kind with keys in r, in byte order, at
// most limit of them (limit <= 0: all).
func (s *Store) List(ctx context.Context, kind string, r bot.KeyRange, limit int) ([]bot.Record, error) {
	if err := bot.ValidateName("kind", kind); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	now := s.now()
	var out []bot.Record
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(kind))
		if b == nil {
			return nil
		}
		from, to := []byte(r.From), []byte(r.To)
		c := b.Cursor()
		for k, raw := c.Seek(from); k != nil; k, raw = c.Next() {
			if len(to) > 0 && bytes.Compare(k, to) >= 0 {
				break
			}
			v, _, err := decode(raw)
			if err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
			if v.expired(now) {
				continue
			}
			out = append(out, v.record(kind, string(k)))
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	return out, nil
}

// Sweep deletes every expired record and reports how many it deleted. The
// background sweeper calls it; it is exported for maintenance commands and
// tests.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	now := s.now()
	var kinds [][]byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			kinds = append(kinds, bytes.Clone(name))
			return nil
		})
	}); err != nil {
		return 0, fmt.Errorf("sweep: list kinds: %w", err)
	}
	deleted := 0
	// One transaction per kind keeps each write lock short.
	for _, kind := range kinds {
		if err := ctx.Err(); err != nil {
			return deleted, fmt.Errorf("sweep: %w", err)
		}
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(kind)
			if b == nil {
				return nil
			}
			var expired [][]byte
			if err := b.ForEach(func(k, raw []byte) error {
				if v, _, err := decode(raw); err == nil && v.expired(now) {
					expired = append(expired, bytes.Clone(k))
				}
				return nil
			}); err != nil {
				return err
			}
			// Delete after iterating: deleting under a cursor skips keys.
			for _, k := range expired {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			deleted += len(expired)
			return nil
		})
		if err != nil {
			return deleted, fmt.Errorf("sweep %s: %w", kind, err)
		}
	}
	return deleted, nil
}

// sweepEvery runs Sweep every interval until ctx ends (at Close).
// after, when not nil, is told the outcome of each sweep.
func (s *Store) sweepEvery(ctx context.Context, interval time.Duration, after func(int, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.Sweep(ctx)
			if ctx.Err() != nil {
				return // closing: a sweep cut short is not a failure
			}
			switch {
			case err != nil:
				s.log.Error("store sweep failed", "path", s.db.Path(), "deleted", n, "err", err)
			case n > 0:
				s.log.Info("store sweep deleted expired records", "path", s.db.Path(), "deleted", n)
			}
			if after != nil {
				after(n, err)
			}
		}
	}
}

// value is a decoded bucket value.
type value struct {
	version   int64
	expiresAt int64 // Unix nanoseconds; 0: never
	data      []byte
}

// formatV1 tags the value layout: [1] version(8) expiresAt(8) data...,
// integers big-endian. The tag lets a later layout coexist with this one.
const (
	formatV1     = 1
	headerLength = 1 + 8 + 8
)

func encode(version int64, expiresAt time.Time, data []byte) []byte {
	buf := make([]byte, headerLength, headerLength+len(data))
	buf[0] = formatV1
	binary.BigEndian.PutUint64(buf[1:9], uint64(version))
	var exp int64
	if !expiresAt.IsZero() {
		exp = expiresAt.UnixNano()
	}
	binary.BigEndian.PutUint64(buf[9:17], uint64(exp))
	return append(buf, data...)
}

// decode parses a stored value; ok is false when raw is nil (no record).
// The data aliases raw, which bbolt owns until the transaction ends.
func decode(raw []byte) (v value, ok bool, err error) {
	if raw == nil {
		return value{}, false, nil
	}
	if len(raw) < headerLength || raw[0] != formatV1 {
		return value{}, false, fmt.Errorf("corrupt record: %d bytes, format %d", len(raw), firstByte(raw))
	}
	return value{
		version:   int64(binary.BigEndian.Uint64(raw[1:9])),
		expiresAt: int64(binary.BigEndian.Uint64(raw[9:17])),
		data:      raw[headerLength:],
	}, true, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// expired reports whether the record's expiry has passed at now.
func (v value) expired(now time.Time) bool {
	return v.expiresAt != 0 && v.expiresAt < now.UnixNano()
}

// record copies v out of the transaction into a bot.Record.
func (v value) record(kind, key string) bot.Record {
	rec := bot.Record{Kind: kind, Key: key, Version: v.version, Data: bytes.Clone(v.data)}
	if rec.Data == nil {
		rec.Data = []byte{}
	}
	if v.expiresAt != 0 {
		rec.ExpiresAt = time.Unix(0, v.expiresAt)
	}
	return rec
}
