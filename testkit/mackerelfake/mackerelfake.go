// Package mackerelfake is a fake Mackerel API server for tests. It speaks
// the calls tokken makes the way Mackerel does: the X-Api-Key header is
// required (403 otherwise), alerts close once (POST
// /api/v0/alerts/{id}/close answers the closed alert; unknown ids 404),
// downtimes are created with ids (POST /api/v0/downtimes, 400 without a
// name or with a non-positive duration) and deleted (DELETE
// /api/v0/downtimes/{id} answers the deleted downtime; unknown or deleted
// ids 404), and monitors are listed (GET /api/v0/monitors). Errors use Mackerel's {"error":{"message":…}} shape.
// Every request is recorded.
package mackerelfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// DefaultAPIKey is the key the fake accepts unless New is given another.
const DefaultAPIKey = "mackerel-test-key"

// Call is one recorded request.
type Call struct {
	Method, Path string
	Body         json.RawMessage
	Status       int
}

// Downtime is a created downtime as the fake stores it.
type Downtime struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Memo          string   `json:"memo,omitempty"`
	Start         int64    `json:"start"`
	Duration      int64    `json:"duration"`
	ServiceScopes []string `json:"serviceScopes,omitempty"`
	RoleScopes    []string `json:"roleScopes,omitempty"`
	MonitorScopes []string `json:"monitorScopes,omitempty"`
}

// Fake is a running fake Mackerel API.
type Fake struct {
	srv *httptest.Server
	key string

	mu        sync.Mutex
	calls     []Call
	open      map[string]bool   // alert id -> open
	reasons   map[string]string // alert id -> close reason
	downtimes []Downtime
	deleted   map[string]bool   // downtime id -> deleted
	monitors  map[string]string // id -> name
	failNext  int               // status for the next request (0: none)
}

// New starts a fake accepting apiKey ("" for DefaultAPIKey); it is closed
// when tb ends.
func New(tb testing.TB, apiKey string) *Fake {
	tb.Helper()
	if apiKey == "" {
		apiKey = DefaultAPIKey
	}
	f := &Fake{key: apiKey, open: map[string]bool{}, reasons: map[string]string{}, deleted: map[string]bool{}, monitors: map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	tb.Cleanup(f.srv.Close)
	return f
}

// URL is the base URL (MACKEREL_API_URL).
func (f *Fake) URL() string { return f.srv.URL + "/" }

// APIKey is the key the fake accepts.
func (f *Fake) APIKey() string { return f.key }

// AddAlert registers an open alert id.
func (f *Fake) AddAlert(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open[id] = true
}

// AddMonitor registers a monitor for GET /api/v0/monitors.
func (f *Fake) AddMonitor(id, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.monitors[id] = name
}

// FailNext makes the next request answer status.
func (f *Fake) FailNext(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = status
}

// Closed returns the reason alert id was closed with, and whether it was.
func (f *Fake) Closed(id string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.reasons[id]
	return r, ok
}

// Downtimes returns the downtimes created, in order, deleted ones
// included.
func (f *Fake) Downtimes() []Downtime {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Downtime(nil), f.downtimes...)
}

// DowntimeDeleted reports whether the downtime with id was deleted.
func (f *Fake) DowntimeDeleted(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deleted[id]
}

// Calls returns the recorded requests.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	f.mu.Lock()
	defer f.mu.Unlock()
	status, answer := f.handle(r, body)
	f.calls = append(f.calls, Call{Method: r.Method, Path: r.URL.Path, Body: json.RawMessage(body), Status: status})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(answer)
}

func apiErr(msg string) any { return map[string]any{"error": map[string]string{"message": msg}} }

func (f *Fake) handle(r *http.Request, body []byte) (int, any) {
	if f.failNext != 0 {
		st := f.failNext
		f.failNext = 0
		return st, apiErr("injected failure")
	}
	if r.Header.Get("X-Api-Key") != f.key {
		return http.StatusForbidden, apiErr("Authentication failed. Please try again after reloading the page.")
	}
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/api/v0/alerts/") && strings.HasSuffix(path, "/close"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/api/v0/alerts/"), "/close")
		var in struct {
			Reason *string `json:"reason"`
		}
		if json.Unmarshal(body, &in) != nil || in.Reason == nil {
			return http.StatusBadRequest, apiErr("reason is required")
		}
		open, known := f.open[id]
		if !known {
			return http.StatusNotFound, apiErr("Alert not found")
		}
		if !open {
			return http.StatusBadRequest, apiErr("Alert is already closed")
		}
		f.open[id] = false
		f.reasons[id] = *in.Reason
		return http.StatusOK, map[string]any{"id": id, "status": "OK", "reason": *in.Reason}
	case r.Method == http.MethodPost && path == "/api/v0/downtimes":
		var d Downtime
		if err := json.Unmarshal(body, &d); err != nil {
			return http.StatusBadRequest, apiErr("invalid JSON")
		}
		if d.Name == "" || d.Duration <= 0 || d.Start <= 0 {
			return http.StatusBadRequest, apiErr("name, start and a positive duration are required")
		}
		for _, id := range d.MonitorScopes {
			if _, ok := f.monitors[id]; !ok {
				return http.StatusBadRequest, apiErr("unknown monitor " + id)
			}
		}
		d.ID = fmt.Sprintf("dt%04d", len(f.downtimes)+1)
		f.downtimes = append(f.downtimes, d)
		return http.StatusOK, d
	case r.Method == http.MethodDelete && strings.HasPrefix(path, "/api/v0/downtimes/"):
		id := strings.TrimPrefix(path, "/api/v0/downtimes/")
		for _, d := range f.downtimes {
			if d.ID == id && !f.deleted[id] {
				f.deleted[id] = true
				return http.StatusOK, d
			}
		}
		return http.StatusNotFound, apiErr("Downtime not found")
	case r.Method == http.MethodGet && path == "/api/v0/monitors":
		type mon struct {
			ID   string `json:"id"`
			Name string `json:"name"`
			Type string `json:"type"`
		}
		out := []mon{}
		for id, name := range f.monitors {
			out = append(out, mon{id, name, "host"})
		}
		return http.StatusOK, map[string]any{"monitors": out}
	}
	return http.StatusNotFound, apiErr("API not found")
}
