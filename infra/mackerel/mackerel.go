// Package mackerel is tokken's outbound Mackerel API client: the few calls
// the on-call buttons make. Close closes an alert
// (POST /api/v0/alerts/{id}/close), CreateDowntime creates a downtime for a
// silence (POST /api/v0/downtimes), DeleteDowntime deletes it when the
// silence ends early (DELETE /api/v0/downtimes/{id}) and MonitorID finds a
// monitor's id by name (GET /api/v0/monitors), since webhooks carry monitor
// names only.
//
// Every request carries the API key in the X-Api-Key header; the key is
// never logged or put in errors. The base URL is configurable
// (MACKEREL_API_URL) so tests talk to testkit/mackerelfake.
package mackerel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultBaseURL is Mackerel's API.
const DefaultBaseURL = "https://api.mackerelio.com/"

// MaxReason is the longest close reason sent; longer ones are cut.
const MaxReason = 200

// Client calls the Mackerel API. It is safe for concurrent use.
type Client struct {
	base *url.URL
	key  string
	http *http.Client
}

// New returns a client for baseURL ("" for DefaultBaseURL) with apiKey.
// httpClient nil means one with a 10 s timeout.
func New(baseURL, apiKey string, httpClient *http.Client) (*Client, error) {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mackerel: base URL %q is not an http(s) URL", baseURL)
	}
	if apiKey == "" {
		return nil, errors.New("mackerel: no API key")
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u, key: apiKey, http: httpClient}, nil
}

// APIError is a non-2xx answer from Mackerel.
type APIError struct {
	Status  int
	Message string // Mackerel's error message, if it sent one
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("mackerel API: HTTP %d", e.Status)
	}
	return fmt.Sprintf("mackerel API: HTTP %d: %s", e.Status, e.Message)
}

// IsNotFound reports whether err is Mackerel's 404 (unknown alert or
// monitor).
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// do sends a JSON request to path and decodes a JSON answer into out
// (nil: discard).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("mackerel %s %s: encode: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	u := *c.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("mackerel %s %s: %w", method, path, err)
	}
	req.Header.Set("X-Api-Key", c.key)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("mackerel %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("mackerel %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("mackerel %s %s: %w", method, path, &APIError{Status: resp.StatusCode, Message: errorMessage(data)})
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("mackerel %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// errorMessage extracts Mackerel's message from {"error":{"message":…}}
// or {"error":"…"}.
func errorMessage(data []byte) string {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil || len(e.Error) == 0 {
		return ""
	}
	var obj struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(e.Error, &obj) == nil && obj.Message != "" {
		return obj.Message
	}
	var s string
	if json.Unmarshal(e.Error, &s) == nil {
		return s
	}
	return ""
}

// Close closes the alert with id, giving reason (cut to MaxReason
// characters). Mackerel then sends the close webhook, which updates the
// Slack message.
func (c *Client) Close(ctx context.Context, alertID, reason string) error {
	if alertID == "" {
		return errors.New("mackerel close: no alert id")
	}
	if r := []rune(reason); len(r) > MaxReason {
		reason = string(r[:MaxReason-1]) + "…"
	}
	return c.do(ctx, http.MethodPost, "/api/v0/alerts/"+url.PathEscape(alertID)+"/close", map[string]string{"reason": reason}, nil)
}

// Downtime is a Mackerel downtime. Scopes name services ("shop"), roles
// ("shop: web") and monitor ids.
type Downtime struct {
	ID            string   `json:"id,omitempty"`
	Name          string   `json:"name"`
	Memo          string   `json:"memo,omitempty"`
	Start         int64    `json:"start"`    // epoch seconds
	Duration      int64    `json:"duration"` // minutes
	ServiceScopes []string `json:"serviceScopes,omitempty"`
	RoleScopes    []string `json:"roleScopes,omitempty"`
	MonitorScopes []string `json:"monitorScopes,omitempty"`
}

// NewDowntime builds a downtime from start to until (whole minutes,
// rounded up).
func NewDowntime(name, memo string, start, until time.Time) Downtime {
	mins := int64((until.Sub(start) + time.Minute - 1) / time.Minute)
	return Downtime{Name: name, Memo: memo, Start: start.Unix(), Duration: max(mins, 1)}
}

// CreateDowntime creates d and returns its id.
func (c *Client) CreateDowntime(ctx context.Context, d Downtime) (string, error) {
	if len(d.ServiceScopes)+len(d.RoleScopes)+len(d.MonitorScopes) == 0 {
		return "", errors.New("mackerel downtime: no scope (it would mute the whole organization)")
	}
	var out Downtime
	if err := c.do(ctx, http.MethodPost, "/api/v0/downtimes", d, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", errors.New("mackerel downtime: created without an id")
	}
	return out.ID, nil
}

// DeleteDowntime deletes the downtime with id, which ends it if it is
// running (Mackerel has no call that only ends one). An unknown id (already
// deleted) gives an error matching IsNotFound.
func (c *Client) DeleteDowntime(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("mackerel delete downtime: no id")
	}
	return c.do(ctx, http.MethodDelete, "/api/v0/downtimes/"+url.PathEscape(id), nil, nil)
}

// MonitorID returns the id of the monitor named name (exact match), or an
// error matching IsNotFound.
func (c *Client) MonitorID(ctx context.Context, name string) (string, error) {
	var out struct {
		Monitors []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"monitors"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v0/monitors", nil, &out); err != nil {
		return "", err
	}
	for _, m := range out.Monitors {
		if m.Name == name {
			return m.ID, nil
		}
	}
	return "", fmt.Errorf("mackerel monitor %q: %w", name, &APIError{Status: http.StatusNotFound, Message: "no monitor with that name"})
}
