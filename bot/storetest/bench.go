package storetest

import (
	"bytes"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/tokken/tokken/bot"
)

// benchDoc returns a document of about the size of a request record (1 KB).
func benchDoc() []byte { return bytes.Repeat([]byte(`{"field":"value"}`), 60) }

// BenchPut measures conditional updates of one ~1 KB record, one writer:
// the cost of every state change.
func BenchPut(b *testing.B, s bot.Store) {
	ctx, doc := b.Context(), benchDoc()
	v, err := s.Put(ctx, bot.Record{Kind: "bench", Key: "put", Data: doc})
	if err != nil {
		b.Fatalf("create: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if v, err = s.Put(ctx, bot.Record{Kind: "bench", Key: "put", Version: v, Data: doc}); err != nil {
			b.Fatalf("Put: %v", err)
		}
	}
}

// BenchGet measures consistent reads of one ~1 KB record.
func BenchGet(b *testing.B, s bot.Store) {
	ctx := b.Context()
	if _, err := s.Put(ctx, bot.Record{Kind: "bench", Key: "get", Data: benchDoc()}); err != nil {
		b.Fatalf("create: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "bench", "get"); err != nil {
			b.Fatalf("Get: %v", err)
		}
	}
}

// BenchUpdateContended measures bot.Table.Update increments of one record
// from GOMAXPROCS parallel writers (scaled by -cpu and b.SetParallelism):
// read, decide, conditional write, and retry on conflict. It reports the
// conflicts suffered per increment and checks no increment was lost.
func BenchUpdateContended(b *testing.B, s bot.Store) {
	ctx := b.Context()
	tbl := bot.Table[counter]{Store: s, Kind: "bench"}
	if err := tbl.Create(ctx, "contended", counter{}, 0); err != nil {
		b.Fatalf("create: %v", err)
	}
	var calls, done atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			for {
				_, err := tbl.Update(ctx, "contended", func(c *counter) error {
					calls.Add(1)
					c.N++
					return nil
				})
				if errors.Is(err, bot.ErrConflict) {
					continue // Update gave up after many losses: try again
				}
				if err != nil {
					b.Errorf("Update: %v", err)
					return
				}
				done.Add(1)
				break
			}
		}
	})
	b.StopTimer()
	got, err := tbl.Get(ctx, "contended")
	if err != nil {
		b.Fatalf("read counter: %v", err)
	}
	if int64(got.Value.N) != done.Load() {
		b.Fatalf("counter = %d after %d successful updates: an increment was lost", got.Value.N, done.Load())
	}
	if n := done.Load(); n > 0 {
		b.ReportMetric(float64(calls.Load()-n)/float64(n), "conflicts/op")
	}
}
