package mackerel

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/testkit/mackerelfake"
)

func client(t *testing.T, f *mackerelfake.Fake, key string) *Client {
	t.Helper()
	c, err := New(f.URL(), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClose(t *testing.T) {
	f := mackerelfake.New(t, "")
	f.AddAlert("2bj")
	c := client(t, f, f.APIKey())
	ctx := context.Background()
	long := strings.Repeat("x", 300)
	if err := c.Close(ctx, "2bj", long); err != nil {
		t.Fatal(err)
	}
	if r, ok := f.Closed("2bj"); !ok || len([]rune(r)) != MaxReason {
		t.Errorf("closed with %d-rune reason, ok=%v", len([]rune(r)), ok)
	}
	tests := []struct {
		name   string
		c      *Client
		id     string
		status int
		msg    string
	}{
		{"already closed", c, "2bj", 400, "already closed"},
		{"unknown", c, "nope", 404, "not found"},
		{"bad key", client(t, f, "wrong"), "2bj", 403, "Authentication failed"},
	}
	for _, tt := range tests {
		err := tt.c.Close(ctx, tt.id, "r")
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != tt.status || !strings.Contains(ae.Message, tt.msg) {
			t.Errorf("%s: %v", tt.name, err)
		}
		if strings.Contains(err.Error(), f.APIKey()) {
			t.Errorf("%s: error leaks the key", tt.name)
		}
	}
	if !IsNotFound(c.Close(ctx, "nope", "r")) {
		t.Error("IsNotFound false for 404")
	}
	if err := c.Close(ctx, "", "r"); err == nil {
		t.Error("empty id accepted")
	}
}

func TestDowntimes(t *testing.T) {
	f := mackerelfake.New(t, "")
	f.AddMonitor("3Ju", "CPU %")
	c := client(t, f, f.APIKey())
	ctx := context.Background()
	id, err := c.MonitorID(ctx, "CPU %")
	if err != nil || id != "3Ju" {
		t.Fatalf("MonitorID = %q, %v", id, err)
	}
	if _, err := c.MonitorID(ctx, "nope"); !IsNotFound(err) {
		t.Errorf("unknown monitor: %v", err)
	}
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	d := NewDowntime("tokken silence s-1", "by U1", start, start.Add(90*time.Minute+time.Second))
	d.MonitorScopes = []string{id}
	dt, err := c.CreateDowntime(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	got := f.Downtimes()
	if dt == "" || len(got) != 1 || got[0].Duration != 91 || got[0].Start != start.Unix() || got[0].MonitorScopes[0] != "3Ju" {
		t.Errorf("downtime %q: %+v", dt, got)
	}
	if _, err := c.CreateDowntime(ctx, NewDowntime("all", "", start, start.Add(time.Hour))); err == nil {
		t.Error("scope-less downtime accepted")
	}
	f.FailNext(http.StatusServiceUnavailable)
	if _, err := c.CreateDowntime(ctx, d); err == nil {
		t.Error("5xx not reported")
	}

	// Deleting ends it; a second delete finds nothing.
	f.FailNext(http.StatusServiceUnavailable)
	if err := c.DeleteDowntime(ctx, dt); err == nil || IsNotFound(err) || f.DowntimeDeleted(dt) {
		t.Errorf("delete answered 503: %v", err)
	}
	if err := c.DeleteDowntime(ctx, dt); err != nil || !f.DowntimeDeleted(dt) {
		t.Errorf("delete %s: %v (deleted in Mackerel: %v)", dt, err, f.DowntimeDeleted(dt))
	}
	calls := f.Calls()
	if last := calls[len(calls)-1]; last.Method != http.MethodDelete || last.Path != "/api/v0/downtimes/"+dt {
		t.Errorf("delete sent %s %s", last.Method, last.Path)
	}
	if err := c.DeleteDowntime(ctx, dt); !IsNotFound(err) {
		t.Errorf("second delete: %v, want not found", err)
	}
	if err := c.DeleteDowntime(ctx, ""); err == nil {
		t.Error("empty id accepted")
	}
}

func TestNew(t *testing.T) {
	for _, tt := range []struct{ url, key string }{{"ftp://x", "k"}, {"http://", "k"}, {"", ""}} {
		if _, err := New(tt.url, tt.key, nil); err == nil {
			t.Errorf("New(%q, %q) accepted", tt.url, tt.key)
		}
	}
	if c, err := New("", "k", nil); err != nil || c.base.Host != "api.mackerelio.com" {
		t.Errorf("default URL: %v", err)
	}
}
