package bot

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned by Store reads when no live record exists.
var ErrNotFound = errors.New("not found")

// ErrConflict is the sentinel every *ConflictError matches with errors.Is.
var ErrConflict = errors.New("version conflict")

// ConflictError reports a conditional write that lost: the stored version was
// not the one the writer expected. The loser should re-read and decide again.
type ConflictError struct {
	Kind, Key string
	// Expected is the version the writer based its change on (0: create).
	Expected int64
}

func (e *ConflictError) Error() string {
	if e.Expected == 0 {
		return fmt.Sprintf("%s %q: already exists", e.Kind, e.Key)
	}
	return fmt.Sprintf("%s %q: version %d is no longer current", e.Kind, e.Key, e.Expected)
}

// Is makes errors.Is(err, ErrConflict) true for every *ConflictError.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Record is one stored item: an opaque document under (Kind, Key), with a
// version that increases by one on every write.
type Record struct {
	Kind string // the collection, e.g. "request", "timer", "audit"
	Key  string // unique within Kind; List returns keys in byte order
	// Version is the stored version on reads. On Put it is the version the
	// writer expects to replace: 0 means "create; fail if it exists".
	Version int64
	Data    []byte // the document, usually JSON
	// ExpiresAt, when set, makes the record invisible to reads after that
	// instant; adapters delete it eventually (DynamoDB TTL, bbolt sweeps).
	// Never use it as a timer: deletion may lag by days.
	ExpiresAt time.Time
}

// KeyRange selects keys k with From <= k < To. An empty To means no upper
// bound. PrefixRange builds the range for a key prefix.
type KeyRange struct{ From, To string }

// PrefixRange returns the KeyRange of all keys starting with prefix.
func PrefixRange(prefix string) KeyRange {
	if prefix == "" {
		return KeyRange{}
	}
	return KeyRange{From: prefix, To: prefix + "\xff"}
}

// Store is tokken's only persistence port. Adapters: infra/boltstore (local,
// embedded) and infra/dynamostore (single DynamoDB table). Both pass the
// contract suite in bot/storetest.
type Store interface {
	// Get returns the live record or an error matching ErrNotFound.
	Get(ctx context.Context, kind, key string) (Record, error)
	// Put writes rec if the stored version equals rec.Version (0: the record
	// must not exist, or must have expired). It returns the new version
	// (rec.Version+1) or a *ConflictError.
	Put(ctx context.Context, rec Record) (int64, error)
	// Delete removes the record if its version equals version (0: whatever
	// the version). Deleting a missing record is not an error.
	Delete(ctx context.Context, kind, key string, version int64) error
	// List returns live records of kind within r in ascending key order,
	// at most limit of them (limit <= 0: all).
	List(ctx context.Context, kind string, r KeyRange, limit int) ([]Record, error)
	// Close releases the store's resources.
	Close() error
}
