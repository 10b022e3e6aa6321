package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Table is a typed view of one Kind in a Store: documents of type T encoded
// as JSON. It is the one way domain code reads and writes state.
type Table[T any] struct {
	Store Store
	Kind  string
}

// Versioned is a document with the version it was read at.
type Versioned[T any] struct {
	Key     string
	Version int64
	Value   T
	// ExpiresAt is the record's housekeeping expiry (zero: none); Update
	// keeps it.
	ExpiresAt time.Time
}

// Get reads and decodes the document under key.
func (t Table[T]) Get(ctx context.Context, key string) (Versioned[T], error) {
	rec, err := t.Store.Get(ctx, t.Kind, key)
	if err != nil {
		return Versioned[T]{}, fmt.Errorf("get %s %s: %w", t.Kind, key, err)
	}
	return decode[T](rec)
}

// Create stores v under key; it fails with a *ConflictError if key exists.
// ttl > 0 sets the record's housekeeping expiry.
func (t Table[T]) Create(ctx context.Context, key string, v T, ttl time.Duration) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", t.Kind, key, err)
	}
	rec := Record{Kind: t.Kind, Key: key, Data: data}
	if ttl > 0 {
		rec.ExpiresAt = time.Now().Add(ttl)
	}
	if _, err := t.Store.Put(ctx, rec); err != nil {
		return fmt.Errorf("create %s %s: %w", t.Kind, key, err)
	}
	return nil
}

// Replace writes v over the version read earlier (0 to create). The
// record is written without a housekeeping expiry.
func (t Table[T]) Replace(ctx context.Context, key string, version int64, v T) (int64, error) {
	return t.put(ctx, key, version, v, time.Time{})
}

func (t Table[T]) put(ctx context.Context, key string, version int64, v T, expires time.Time) (int64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s %s: %w", t.Kind, key, err)
	}
	n, err := t.Store.Put(ctx, Record{Kind: t.Kind, Key: key, Version: version, Data: data, ExpiresAt: expires})
	if err != nil {
		return 0, fmt.Errorf("put %s %s: %w", t.Kind, key, err)
	}
	return n, nil
}

// ErrNoChange may be returned by an Update function to leave the document
// as it is; Update then returns the current value and a nil error.
var ErrNoChange = errors.New("no change")

// Update applies fn to the current document under key and writes the result
// with a conditional write, re-reading and re-applying fn when another writer
// got there first. fn must be a pure decision on its argument: it may run
// several times. An error from fn (other than ErrNoChange) aborts the update
// and is returned unwrapped, so callers can match their own domain errors.
// A missing document is an error matching ErrNotFound. The record keeps its
// housekeeping expiry.
func (t Table[T]) Update(ctx context.Context, key string, fn func(*T) error) (T, error) {
	return t.modify(ctx, key, false, 0, func(v *T, _ bool) error { return fn(v) })
}

// Upsert is Update that also creates: fn gets exists=false and the zero
// value when there is no live document. Each write sets the housekeeping
// expiry to ttl from now; ttl 0 keeps the record's current expiry (none for
// a new record).
func (t Table[T]) Upsert(ctx context.Context, key string, ttl time.Duration, fn func(v *T, exists bool) error) (T, error) {
	return t.modify(ctx, key, true, ttl, fn)
}

func (t Table[T]) modify(ctx context.Context, key string, create bool, ttl time.Duration, fn func(*T, bool) error) (T, error) {
	const attempts = 30
	for i := 0; i < attempts; i++ {
		cur, err := t.Get(ctx, key)
		exists := err == nil
		if err != nil && !(create && errors.Is(err, ErrNotFound)) {
			var zero T
			return zero, err
		}
		v := cur.Value
		if err := fn(&v, exists); err != nil {
			if errors.Is(err, ErrNoChange) {
				return cur.Value, nil
			}
			return cur.Value, err
		}
		expires := cur.ExpiresAt
		if ttl > 0 {
			expires = time.Now().Add(ttl)
		}
		if _, err := t.put(ctx, key, cur.Version, v, expires); err != nil {
			if errors.Is(err, ErrConflict) {
				continue
			}
			return cur.Value, err
		}
		return v, nil
	}
	var zero T
	return zero, fmt.Errorf("update %s %s: gave up after %d conflicting writers: %w", t.Kind, key, attempts, ErrConflict)
}

// List decodes the live documents within r.
func (t Table[T]) List(ctx context.Context, r KeyRange, limit int) ([]Versioned[T], error) {
	recs, err := t.Store.List(ctx, t.Kind, r, limit)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", t.Kind, err)
	}
	out := make([]Versioned[T], 0, len(recs))
	for _, rec := range recs {
		v, err := decode[T](rec)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func decode[T any](rec Record) (Versioned[T], error) {
	var v T
	if err := json.Unmarshal(rec.Data, &v); err != nil {
		// Retrying cannot fix a document that does not decode.
		return Versioned[T]{}, Permanent(fmt.Errorf("decode %s %s: %w", rec.Kind, rec.Key, err))
	}
	return Versioned[T]{Key: rec.Key, Version: rec.Version, Value: v, ExpiresAt: rec.ExpiresAt}, nil
}
