package metrics

import (
	"context"
	"io"
	"testing"
	"time"
)

// Run with: go test -run '^$' -bench . -benchmem ./infra/metrics/

func BenchmarkCount(b *testing.B) {
	ctx := context.Background()
	r := New(io.Discard, "tokken", map[string]string{"Function": "worker"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Count(ctx, Requests, 1)
		}
	})
}

func BenchmarkCountWithDimension(b *testing.B) {
	ctx := context.Background()
	r := New(io.Discard, "tokken", map[string]string{"Function": "worker"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Count(ctx, GrantsIssued, 1, Dim("Profile", "prod-ssm"))
		}
	})
}

func BenchmarkDuration(b *testing.B) {
	ctx := context.Background()
	r := New(io.Discard, "tokken", map[string]string{"Function": "worker"})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.Duration(ctx, AckLatency, 120*time.Millisecond)
		if i%1000 == 999 { // stay under MaxPendingValues, as a flushing process would
			_ = r.Flush()
		}
	}
}

// BenchmarkFlush measures one Lambda-invocation-sized flush: every known
// metric once, plus a dimensioned grant count and a few latencies.
func BenchmarkFlush(b *testing.B) {
	ctx := context.Background()
	r := New(io.Discard, "tokken", map[string]string{"Function": "worker"})
	b.ReportAllocs()
	for b.Loop() {
		for _, d := range Known() {
			if d.Unit == UnitCount {
				r.Count(ctx, d.Name, 1)
			} else {
				r.Duration(ctx, d.Name, 80*time.Millisecond)
				r.Duration(ctx, d.Name, 95*time.Millisecond)
			}
		}
		r.Count(ctx, GrantsIssued, 1, Dim("Profile", "prod-ssm"))
		if err := r.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}
