package alert

import (
	"context"
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

// upsert is bot.Table.Upsert on (kind, key): it creates missing documents
// and refreshes the housekeeping expiry on every write.
func upsert[T any](ctx context.Context, st bot.Store, kind, key string, ttl time.Duration, fn func(v *T, exists bool) error) (T, error) {
	return bot.Table[T]{Store: st, Kind: kind}.Upsert(ctx, key, ttl, fn)
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
