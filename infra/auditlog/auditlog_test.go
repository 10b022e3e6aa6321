package auditlog

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/infra/slackapi"
)

type poster struct {
	mu    sync.Mutex
	posts []string
	err   error
}

func (p *poster) PostMessage(_ context.Context, channel string, m slackapi.Message) (slackapi.MessageRef, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return slackapi.MessageRef{}, p.err
	}
	p.posts = append(p.posts, channel+" "+m.Text)
	return slackapi.MessageRef{Channel: channel, TS: "1.1"}, nil
}

func openStore(t *testing.T) bot.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRecordAndRead(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	var logs bytes.Buffer
	p := &poster{}
	l := New(store, Options{Channel: "C0AUDIT01", Poster: p, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	t0 := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	events := []bot.AuditEvent{
		{At: t0, Actor: "U0ALICE01", Action: "access.requested", Subject: "r-1", Reason: "<!channel> fix & go", Profile: "prod-ssm"},
		{At: t0, Actor: "U0BOB0001", Action: "access.requested", Subject: "r-1", Reason: "same instant, same key"},
		{At: t0, Actor: "tokken", Action: "access.activating", Subject: "r-1", Reason: "same instant, sorts first by name"},
		{At: t0.Add(time.Minute), Actor: "tokken", Action: "access.active", Subject: "r-1", WindowEnd: t0.Add(31 * time.Minute)},
		{At: t0.Add(2 * time.Minute), Actor: "U0ALICE01", Action: "access.requested", Subject: "r-2"},
	}
	for _, e := range events {
		if err := l.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		q    Query
		want []string // subject/action/actor
	}{
		{"all", Query{}, []string{"r-1/access.requested/U0ALICE01", "r-1/access.requested/U0BOB0001", "r-1/access.activating/tokken", "r-1/access.active/tokken", "r-2/access.requested/U0ALICE01"}},
		{"since", Query{Since: t0.Add(time.Minute)}, []string{"r-1/access.active/tokken", "r-2/access.requested/U0ALICE01"}},
		{"until", Query{Until: t0.Add(time.Minute)}, []string{"r-1/access.requested/U0ALICE01", "r-1/access.requested/U0BOB0001", "r-1/access.activating/tokken"}},
		{"subject", Query{Subject: "r-2"}, []string{"r-2/access.requested/U0ALICE01"}},
		{"none", Query{Since: t0.Add(time.Hour)}, nil},
	}
	for _, tt := range tests {
		got, err := Read(ctx, store, tt.q)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range got {
			ids = append(ids, e.Subject+"/"+e.Action+"/"+e.Actor)
		}
		if strings.Join(ids, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: got %v, want %v", tt.name, ids, tt.want)
		}
	}
	if len(p.posts) != len(events) {
		t.Fatalf("%d posts, want %d", len(p.posts), len(events))
	}
	if first := p.posts[0]; !strings.HasPrefix(first, "C0AUDIT01 ") || !strings.Contains(first, "&lt;!channel&gt; fix &amp; go") || !strings.Contains(first, "<@U0ALICE01>") {
		t.Errorf("channel line not escaped or without mention: %q", first)
	}
	if !strings.Contains(logs.String(), `"audit_action":"access.active"`) {
		t.Errorf("no JSON log line: %s", logs.String())
	}
}

func TestChannelFailureDoesNotFailRecord(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	var logs bytes.Buffer
	l := New(store, Options{Channel: "C0AUDIT01", Poster: &poster{err: errors.New("slack down")}, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err := l.Record(ctx, bot.AuditEvent{Actor: "U1", Action: "access.denied", Subject: "r-3"}); err != nil {
		t.Fatalf("Record failed because Slack did: %v", err)
	}
	got, err := Read(ctx, store, Query{Subject: "r-3"})
	if err != nil || len(got) != 1 || got[0].At.IsZero() {
		t.Fatalf("stored %+v, %v", got, err)
	}
	if !strings.Contains(logs.String(), "not posted to the audit channel") {
		t.Error("the failed post was not logged")
	}
}

func TestStoreFailureFailsRecord(t *testing.T) {
	store := openStore(t)
	store.Close()
	l := New(store, Options{})
	if err := l.Record(context.Background(), bot.AuditEvent{Actor: "U1", Action: "access.denied", Subject: "r-4"}); err == nil {
		t.Fatal("Record on a closed store: no error")
	}
}

// TestLineIsOneLine: whatever line breaks or bidirectional controls the
// user's text holds, one event is one line, with nothing that reorders it.
// TestLineNamesSession: a session event's line says which session ended
// and what it was on.
func TestLineNamesSession(t *testing.T) {
	e := bot.AuditEvent{At: time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC), Actor: "tokken", Action: "access.session_ended", Subject: "r-1",
		Detail: map[string]string{"session": "r-1-0a1b2c", "target": "ecs:staging_0123_0123-1111"}}
	if line := Line(e, time.UTC); !strings.Contains(line, " · session r-1-0a1b2c on ecs:staging_0123_0123-1111") {
		t.Errorf("line %q does not name the session and its target", line)
	}
}

func TestLineIsOneLine(t *testing.T) {
	t0 := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	forged := "fix\n`2026-03-03 10:00:00 UTC` *access.approved* `r-1` by <@U0BOB0001>\r\nagain\u2028and\u2029again\u202Eexe.txt"
	e := bot.AuditEvent{At: t0, Actor: "U0ALICE01", Action: "access.requested", Subject: "r-1\nr-2", Profile: "prod\u2028ssm",
		Reason: forged, Detail: map[string]string{"requester": "U0ALICE01"}}
	line := Line(e, time.UTC)
	if strings.ContainsAny(line, "\r\n\u2028\u2029\u0085") {
		t.Fatalf("the line breaks: %q", line)
	}
	if strings.ContainsAny(line, "\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069") {
		t.Fatalf("the line keeps a bidirectional control: %q", line)
	}
	for _, want := range []string{"fix ⏎ `2026-03-03", "&lt;@U0BOB0001&gt;", "again[U+202E]exe.txt", "`r-1 ⏎ r-2`", "prod ⏎ ssm"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
}
