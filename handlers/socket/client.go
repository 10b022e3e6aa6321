package socket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// DefaultAPIURL is Slack's Web API base URL.
const DefaultAPIURL = "https://slack.com/api/"

// Client opens Socket Mode connections: apps.connections.open with the
// app-level token hands out a single-use WebSocket URL, which it dials.
type Client struct {
	appToken string
	apiURL   string // ends in "/"
	http     *http.Client
	dialer   *websocket.Dialer
	// silence is how long a connection may stay quiet (no message, no
	// ping from Slack) before it is taken for dead and replaced. Slack
	// pings every few seconds; slack-go waits 30 s.
	silence time.Duration
	// backoff bounds the wait between failed attempts to connect.
	backoff [2]time.Duration
	// settled is how long a connection must have served for its end to
	// be followed by a new one at once rather than after a pause.
	settled time.Duration
}

// NewClient returns a Client for the app-level ("xapp-") token, calling
// the Web API at apiURL (SLACK_API_URL; "" for Slack's).
func NewClient(appToken, apiURL string) *Client {
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	return &Client{
		appToken: appToken,
		apiURL:   apiURL,
		http:     &http.Client{Timeout: 30 * time.Second},
		dialer:   &websocket.Dialer{HandshakeTimeout: 30 * time.Second, Proxy: http.ProxyFromEnvironment},
		silence:  30 * time.Second,
		backoff:  [2]time.Duration{time.Second, 30 * time.Second},
		settled:  30 * time.Second,
	}
}

// errInvalidAuth is Slack refusing the app-level token: retrying cannot
// help.
var errInvalidAuth = errors.New("Slack rejected SLACK_APP_TOKEN")

// open asks apps.connections.open for a WebSocket URL.
func (c *Client) open(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.apiURL+"apps.connections.open", nil)
	if err != nil {
		return "", fmt.Errorf("apps.connections.open: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.appToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("apps.connections.open: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("apps.connections.open: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("apps.connections.open: HTTP %d", resp.StatusCode)
	}
	var out struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		URL   string `json:"url"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", fmt.Errorf("apps.connections.open: %w", err)
	}
	switch {
	case out.Error == "invalid_auth" || out.Error == "not_authed" || out.Error == "not_allowed_token_type":
		return "", fmt.Errorf("%w: %s", errInvalidAuth, out.Error)
	case !out.OK:
		return "", fmt.Errorf("apps.connections.open: %s", out.Error)
	case out.URL == "":
		return "", errors.New("apps.connections.open: no url")
	}
	return out.URL, nil
}

// dial opens a new connection.
func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	url, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	conn, resp, err := c.dialer.DialContext(ctx, url, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial Socket Mode URL: %w", err)
	}
	return conn, nil
}

// Envelope is one message Slack sends over the socket: a request to
// acknowledge (slash_commands, interactive, events_api) or the connection's
// own (hello, disconnect).
type Envelope struct {
	Type       string          `json:"type"`
	EnvelopeID string          `json:"envelope_id"`
	Payload    json.RawMessage `json:"payload"`
	// RetryAttempt and RetryReason say that Slack sends the envelope again
	// (events_api).
	RetryAttempt int    `json:"retry_attempt"`
	RetryReason  string `json:"retry_reason"`
	// Reason says why Slack is about to close the connection (disconnect).
	Reason string `json:"reason"`
}

// Envelope types.
const (
	TypeHello         = "hello"
	TypeDisconnect    = "disconnect"
	TypeSlashCommands = "slash_commands"
	TypeInteractive   = "interactive"
	TypeEventsAPI     = "events_api"
)

// ack is the acknowledgement of one envelope.
type ack struct {
	EnvelopeID string `json:"envelope_id"`
	Payload    any    `json:"payload,omitempty"`
}
