package bot

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
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

// Limits every Store adapter enforces. They are DynamoDB's, so that what
// works on the embedded store locally also works on Lambda.
const (
	// MaxKeyBytes bounds kinds and keys: DynamoDB's sort-key limit.
	MaxKeyBytes = 1024
	// MaxRecordBytes bounds a record's kind, key and data together:
	// DynamoDB's 400 KB item limit less room for infra/dynamostore's
	// attribute names and numbers.
	MaxRecordBytes = 400<<10 - 64
)

// ValidateName checks a kind or key (what says which) against the limits:
// non-empty, valid UTF-8, at most MaxKeyBytes.
func ValidateName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty %s", what)
	case len(s) > MaxKeyBytes:
		return fmt.Errorf("%s is %d bytes, longer than the limit of %d", what, len(s), MaxKeyBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s %q is not valid UTF-8", what, s)
	}
	return nil
}

// ValidateKey checks a kind and a key.
func ValidateKey(kind, key string) error {
	if err := ValidateName("kind", kind); err != nil {
		return err
	}
	if err := ValidateName("key", key); err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	return nil
}

// ValidateRecord checks a record about to be Put.
func ValidateRecord(rec Record) error {
	if err := ValidateKey(rec.Kind, rec.Key); err != nil {
		return err
	}
	if rec.Version < 0 {
		return fmt.Errorf("%s %q: negative version %d", rec.Kind, rec.Key, rec.Version)
	}
	if n := len(rec.Kind) + len(rec.Key) + len(rec.Data); n > MaxRecordBytes {
		return fmt.Errorf("%s %q: record is %d bytes, larger than the limit of %d", rec.Kind, rec.Key, n, MaxRecordBytes)
	}
	return nil
}
