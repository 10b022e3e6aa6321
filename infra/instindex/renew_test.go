package instindex_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/infra/ec2fleet"
	"github.com/tokken/tokken/infra/instindex"
	"github.com/tokken/tokken/testkit/awsfake"
)

// TestRenewal checks that an unchanged entry is left alone while it has
// more than half of its TTL to live and rewritten (expiry renewed) before
// its last quarter.
func TestRenewal(t *testing.T) {
	f := awsfake.New(t)
	const id = "i-0123456789abcdef0"
	f.EC2().AddInstance(awsfake.Instance{ID: id, Name: "web-01"})
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "tokken.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	fleet := ec2fleet.New(f.Config(context.Background()))
	ctx := context.Background()
	now := time.Now()
	tests := []struct {
		name       string
		writtenAgo time.Duration
		renewed    bool
	}{
		{"fresh", time.Minute, false},
		{"under half its life", instindex.TTL/2 - 2*time.Minute, false},
		{"in its last quarter", instindex.TTL*3/4 + 2*time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := store.Delete(ctx, instindex.Kind, id, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := instindex.RefreshAt(ctx, fleet, store, now.Add(-tt.writtenAgo)); err != nil {
				t.Fatal(err)
			}
			if _, err := instindex.RefreshAt(ctx, fleet, store, now); err != nil {
				t.Fatal(err)
			}
			v, err := bot.Table[instindex.Entry]{Store: store, Kind: instindex.Kind}.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.Version == 2; got != tt.renewed {
				t.Errorf("written %v ago: renewed = %v (version %d), want %v", tt.writtenAgo, got, v.Version, tt.renewed)
			}
			if tt.renewed && !v.ExpiresAt.Equal(now.Add(instindex.TTL)) {
				t.Errorf("renewed entry expires at %v, want %v", v.ExpiresAt, now.Add(instindex.TTL))
			}
		})
	}
}

func TestRenewWithinSpreads(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := range 200 {
		d := instindex.RenewWithin(fmt.Sprintf("i-1%016x", i))
		if d <= instindex.TTL/4 || d > instindex.TTL/2 {
			t.Fatalf("renewWithin = %v, want within (%v, %v]", d, instindex.TTL/4, instindex.TTL/2)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Errorf("200 instances renew at only %d distinct points", len(seen))
	}
}
