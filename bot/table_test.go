package bot_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/boltstore"
)

type doc struct{ N int }

func openTable(t *testing.T) bot.Table[doc] {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return bot.Table[doc]{Store: s, Kind: "doc"}
}

func TestTableUpdateKeepsExpiry(t *testing.T) {
	ctx := context.Background()
	tb := openTable(t)
	if err := tb.Create(ctx, "k", doc{N: 1}, time.Hour); err != nil {
		t.Fatal(err)
	}
	before, err := tb.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if before.ExpiresAt.IsZero() {
		t.Fatal("Create with a ttl stored no expiry")
	}
	got, err := tb.Update(ctx, "k", func(d *doc) error { d.N++; return nil })
	if err != nil || got.N != 2 {
		t.Fatalf("Update = %+v, %v", got, err)
	}
	after, err := tb.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != before.Version+1 || !after.ExpiresAt.Equal(before.ExpiresAt) {
		t.Fatalf("after Update: version %d expiry %v; want version %d expiry %v",
			after.Version, after.ExpiresAt, before.Version+1, before.ExpiresAt)
	}
}

func TestTableUpdateErrors(t *testing.T) {
	ctx := context.Background()
	tb := openTable(t)
	if _, err := tb.Update(ctx, "missing", func(*doc) error { return nil }); !errors.Is(err, bot.ErrNotFound) {
		t.Fatalf("Update of a missing key: %v, want ErrNotFound", err)
	}
	if err := tb.Create(ctx, "k", doc{N: 1}, 0); err != nil {
		t.Fatal(err)
	}
	errDomain := errors.New("already decided")
	if _, err := tb.Update(ctx, "k", func(*doc) error { return errDomain }); err != errDomain {
		t.Fatalf("domain error came back as %v, want it unwrapped", err)
	}
	v, err := tb.Update(ctx, "k", func(*doc) error { return bot.ErrNoChange })
	if err != nil || v.N != 1 {
		t.Fatalf("ErrNoChange: %+v, %v", v, err)
	}
	if cur, _ := tb.Get(ctx, "k"); cur.Version != 1 {
		t.Fatalf("ErrNoChange wrote: version %d", cur.Version)
	}
	if err := tb.Create(ctx, "k", doc{}, 0); !errors.Is(err, bot.ErrConflict) {
		t.Fatalf("second Create: %v, want ErrConflict", err)
	}
}

func TestTableUpsert(t *testing.T) {
	ctx := context.Background()
	tb := openTable(t)
	got, err := tb.Upsert(ctx, "k", time.Hour, func(d *doc, exists bool) error {
		if exists {
			t.Error("exists = true for a missing document")
		}
		d.N = 1
		return nil
	})
	if err != nil || got.N != 1 {
		t.Fatalf("first Upsert = %+v, %v", got, err)
	}
	first, _ := tb.Get(ctx, "k")
	if first.Version != 1 || first.ExpiresAt.IsZero() {
		t.Fatalf("created %+v, want version 1 with an expiry", first)
	}
	got, err = tb.Upsert(ctx, "k", 2*time.Hour, func(d *doc, exists bool) error {
		if !exists || d.N != 1 {
			t.Errorf("second Upsert saw exists=%v N=%d", exists, d.N)
		}
		d.N++
		return nil
	})
	if err != nil || got.N != 2 {
		t.Fatalf("second Upsert = %+v, %v", got, err)
	}
	second, _ := tb.Get(ctx, "k")
	if second.Version != 2 || !second.ExpiresAt.After(first.ExpiresAt) {
		t.Fatalf("after second Upsert: %+v; want version 2 and a later expiry than %v", second, first.ExpiresAt)
	}
}

func TestTableCorruptDocumentIsPermanent(t *testing.T) {
	ctx := context.Background()
	tb := openTable(t)
	if _, err := tb.Store.Put(ctx, bot.Record{Kind: tb.Kind, Key: "bad", Data: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Get(ctx, "bad"); err == nil || !bot.IsPermanent(err) {
		t.Fatalf("Get of a corrupt document: %v, want a permanent error", err)
	}
}
