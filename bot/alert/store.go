package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tokken/tokken/bot"
)

// Store kinds the alert lifecycle writes.
const (
	// KindDelivery holds every inbound delivery as received (DeliveryTTL).
	KindDelivery = "alert_delivery"
	// KindRecord holds one Record per Alert.Key.
	KindRecord = "alert"
	// KindNotice holds one NoticeRecord per Notice.Key.
	KindNotice = "alert_notice"
	// KindSilence holds silences by id.
	KindSilence = "alert_silence"
	// KindStorm holds the current (or last) storm of each channel.
	KindStorm = "alert_storm"
	// KindRate counts new alerts per channel per StormWindow.
	KindRate = "alert_rate"
	// KindLine holds storm thread lines waiting to be posted, keyed
	// "<channel>/<time>/<member>/<seq>" so they list in order.
	KindLine = "alert_line"
	// KindSubject remembers, per monitor and target, the last alert's
	// message, so a reopening alert can reuse it (flapping).
	KindSubject = "alert_subject"
)

// Retention of stored state. Every write refreshes the expiry, so only
// state nobody touched for this long is removed.
const (
	DeliveryTTL = 30 * 24 * time.Hour
	RecordTTL   = 90 * 24 * time.Hour
	rateTTL     = time.Hour
	lineTTL     = 7 * 24 * time.Hour
	silenceKeep = 7 * 24 * time.Hour // kept after its end, for /alerts list and audit
)

// upsert reads the document under (kind, key), lets fn change it (exists
// is false when there is none; fn starts from the zero value) and writes it
// back with a conditional write, retrying when another writer got there
// first. Each write refreshes the record's expiry to ttl from now (0: none).
// fn may return bot.ErrNoChange to write nothing, or an error to abort (it
// is returned unwrapped). It returns the document as stored.
//
// It differs from bot.Table.Update in creating missing documents and in
// keeping the housekeeping expiry alive across updates (Table.Replace
// clears it).
func upsert[T any](ctx context.Context, st bot.Store, kind, key string, ttl time.Duration, fn func(v *T, exists bool) error) (T, error) {
	const attempts = 30
	for range attempts {
		var v T
		var version int64
		rec, err := st.Get(ctx, kind, key)
		exists := err == nil
		switch {
		case errors.Is(err, bot.ErrNotFound):
		case err != nil:
			return v, fmt.Errorf("get %s %s: %w", kind, key, err)
		default:
			if err := json.Unmarshal(rec.Data, &v); err != nil {
				return v, bot.Permanent(fmt.Errorf("decode %s %s: %w", kind, key, err))
			}
			version = rec.Version
		}
		if err := fn(&v, exists); err != nil {
			if errors.Is(err, bot.ErrNoChange) {
				var cur T
				if exists {
					_ = json.Unmarshal(rec.Data, &cur) // decoded once above
				}
				return cur, nil
			}
			return v, err
		}
		data, err := json.Marshal(v)
		if err != nil {
			return v, fmt.Errorf("encode %s %s: %w", kind, key, err)
		}
		out := bot.Record{Kind: kind, Key: key, Version: version, Data: data}
		if ttl > 0 {
			out.ExpiresAt = time.Now().Add(ttl)
		}
		if _, err := st.Put(ctx, out); err != nil {
			if errors.Is(err, bot.ErrConflict) {
				continue
			}
			return v, fmt.Errorf("put %s %s: %w", kind, key, err)
		}
		return v, nil
	}
	var zero T
	return zero, fmt.Errorf("update %s %s: gave up after %d conflicting writers: %w", kind, key, attempts, bot.ErrConflict)
}

// get reads one document.
func get[T any](ctx context.Context, st bot.Store, kind, key string) (T, error) {
	v, err := bot.Table[T]{Store: st, Kind: kind}.Get(ctx, key)
	return v.Value, err
}

// list reads the live documents of kind within r.
func list[T any](ctx context.Context, st bot.Store, kind string, r bot.KeyRange, limit int) ([]T, error) {
	vs, err := bot.Table[T]{Store: st, Kind: kind}.List(ctx, r, limit)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(vs))
	for i, v := range vs {
		out[i] = v.Value
	}
	return out, nil
}
