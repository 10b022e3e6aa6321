package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokken/tokken/bot"
)

// deliveries remembers which Slack deliveries ran, so that a repeated one
// (a replayed request, a redelivery, a double click) has no second effect.
// Each delivery is a create-only store record (KindSeen, expiring after
// SeenTTL) written before the handler runs, on every store: every Lambda
// instance sees every other's deliveries, and a restart, even after a
// crash, forgets nothing the store committed (bbolt commits each write
// with an fdatasync; docs/operations.md).
type deliveries struct{ store bot.Store }

func (s deliveries) first(ctx context.Context, key string) (bool, error) {
	_, err := s.store.Put(ctx, bot.Record{Kind: KindSeen, Key: key, Data: []byte(`{}`), ExpiresAt: time.Now().Add(SeenTTL)})
	if errors.Is(err, bot.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record delivery %s: %w", key, err)
	}
	return true, nil
}

func (s deliveries) forget(ctx context.Context, key string) error {
	if err := s.store.Delete(ctx, KindSeen, key, 0); err != nil {
		return fmt.Errorf("forget delivery %s: %w", key, err)
	}
	return nil
}
