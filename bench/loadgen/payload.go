package loadgen

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokken/tokken/handlers/slacksig"
	"github.com/tokken/tokken/testkit/slackfake"
)

// Kind is the kind of Slack request the generator sends.
type Kind string

// Request kinds.
const (
	// KindCommand is a slash command, POSTed to /slack/commands.
	KindCommand Kind = "command"
	// KindInteraction is a block_actions button click, POSTed to
	// /slack/interactions.
	KindInteraction Kind = "interaction"
)

// Path is where Slack sends requests of kind k.
func (k Kind) Path() string {
	if k == KindInteraction {
		return "/slack/interactions"
	}
	return "/slack/commands"
}

// Identity of the fake workspace the requests come from: slackfake's team,
// the one tokken is installed in (it refuses requests from other teams).
const (
	TeamID    = slackfake.TeamID
	ChannelID = "C0BENCH001"
	UserID    = "U0BENCH001"
	AppID     = "A0BENCH001"
)

// Payload describes what is sent. Every request gets a fresh trigger_id, as
// Slack issues one per user action: a server that deduplicates deliveries
// on it (tokken does, for interactions) does real work for each request
// instead of answering "duplicate".
type Payload struct {
	Kind Kind
	// Command and Text make the slash command (KindCommand), e.g.
	// "/access" and "help".
	Command, Text string
	// ActionID and Value make the clicked button (KindInteraction).
	ActionID, Value string
	// ResponseURL is put in every request. Nothing the harness measures
	// posts to it; it defaults to a closed loopback port so a server that
	// did would fail fast instead of reaching the internet.
	ResponseURL string
}

// DefaultResponseURL is the response_url used when Payload leaves it empty.
const DefaultResponseURL = "http://127.0.0.1:9/commands/T0BENCH001/1/bench"

// Builder makes signed requests for one Payload. It is safe for concurrent
// use; the body template is encoded once and only the trigger_id varies.
type Builder struct {
	secret []byte
	path   string
	// run makes trigger ids unique across builders (and so across runs
	// against the same server, which may remember them).
	run string
	// prefix + trigger id + suffix is the form-encoded body.
	prefix, suffix string
}

// NewBuilder checks p and prepares its body template.
func NewBuilder(p Payload, secret []byte) (*Builder, error) {
	if len(secret) == 0 {
		return nil, fmt.Errorf("loadgen: empty signing secret")
	}
	if p.ResponseURL == "" {
		p.ResponseURL = DefaultResponseURL
	}
	// A marker that survives form encoding unchanged and cannot occur in
	// the rest of the body.
	const marker = "TRIGGERMARKER7f3a"
	var body string
	switch p.Kind {
	case KindCommand:
		if !strings.HasPrefix(p.Command, "/") {
			return nil, fmt.Errorf("loadgen: command %q must start with /", p.Command)
		}
		body = url.Values{
			"token": {"deprecated-verification-token"}, "team_id": {TeamID}, "team_domain": {"bench"},
			"channel_id": {ChannelID}, "channel_name": {"bench"}, "user_id": {UserID},
			"user_name": {"bench"}, "command": {p.Command}, "text": {p.Text},
			"api_app_id": {AppID}, "is_enterprise_install": {"false"},
			"response_url": {p.ResponseURL}, "trigger_id": {marker},
		}.Encode()
	case KindInteraction:
		if p.ActionID == "" {
			return nil, fmt.Errorf("loadgen: an interaction needs an action id")
		}
		payload, err := interactionJSON(p, marker)
		if err != nil {
			return nil, err
		}
		body = url.Values{"payload": {string(payload)}}.Encode()
	default:
		return nil, fmt.Errorf("loadgen: unknown request kind %q (want %q or %q)", p.Kind, KindCommand, KindInteraction)
	}
	prefix, suffix, ok := strings.Cut(body, marker)
	if !ok || strings.Contains(suffix, marker) {
		return nil, fmt.Errorf("loadgen: trigger marker lost in the encoded body")
	}
	var run [6]byte
	if _, err := rand.Read(run[:]); err != nil {
		return nil, fmt.Errorf("loadgen: trigger id: %w", err)
	}
	return &Builder{secret: secret, path: p.Kind.Path(), prefix: prefix, suffix: suffix,
		run: "." + strconv.FormatInt(time.Now().Unix(), 10) + "." + hex.EncodeToString(run[:])}, nil
}

// interactionJSON is the payload Slack sends when a user clicks p's button
// on a bot message in ChannelID, shaped like Slack's own block_actions
// example (fields Slack sends, no zero-valued extras): a section and an
// actions block on the message, the clicked button in actions.
func interactionJSON(p Payload, trigger string) ([]byte, error) {
	const msgTS = "1700000000.000100"
	type obj = map[string]any
	text := func(t string) obj { return obj{"type": "plain_text", "text": t, "emoji": true} }
	button := func(id, label string) obj {
		return obj{"type": "button", "action_id": id, "text": text(label), "value": p.Value}
	}
	payload := obj{
		"type":                  "block_actions",
		"user":                  obj{"id": UserID, "username": "bench", "name": "bench", "team_id": TeamID},
		"api_app_id":            AppID,
		"token":                 "deprecated-verification-token",
		"container":             obj{"type": "message", "message_ts": msgTS, "channel_id": ChannelID, "is_ephemeral": false},
		"trigger_id":            trigger,
		"team":                  obj{"id": TeamID, "domain": "bench"},
		"enterprise":            nil,
		"is_enterprise_install": false,
		"channel":               obj{"id": ChannelID, "name": "bench"},
		"message": obj{
			"bot_id": "B0BENCH001", "type": "message", "text": "benchmark message", "user": "U0BENCHBOT", "ts": msgTS,
			"app_id": AppID, "team": TeamID,
			"blocks": []obj{
				{"type": "section", "block_id": "bench_summary", "text": obj{"type": "mrkdwn", "text": "*CRITICAL* app-01: cpu.user > 90% for 5 minutes", "verbatim": false}},
				{"type": "actions", "block_id": "bench_actions", "elements": []obj{button(p.ActionID, "Acknowledge"), button("bench.other", "Silence 1h")}},
			},
		},
		"state":        obj{"values": obj{}},
		"response_url": p.ResponseURL,
		"actions": []obj{{
			"action_id": p.ActionID, "block_id": "bench_actions", "text": text("Acknowledge"),
			"value": p.Value, "type": "button", "action_ts": "1700000001.000200",
		}},
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("loadgen: encode interaction: %w", err)
	}
	return b, nil
}

// Body returns the form-encoded body whose trigger id is made of seq and
// the builder's own random part, in Slack's digits.digits.hex shape.
func (b *Builder) Body(seq uint64) []byte {
	trigger := strconv.FormatUint(seq, 10) + b.run
	out := make([]byte, 0, len(b.prefix)+len(trigger)+len(b.suffix))
	out = append(out, b.prefix...)
	out = append(out, trigger...)
	return append(out, b.suffix...)
}

// Request returns the signed request number seq to baseURL, signed at now
// exactly as Slack signs (handlers/slacksig).
func (b *Builder) Request(baseURL string, seq uint64, now time.Time) (*http.Request, error) {
	body := b.Body(seq)
	req, err := http.NewRequest(http.MethodPost, strings.TrimSuffix(baseURL, "/")+b.path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("loadgen: request to %s: %w", baseURL, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	slacksig.SignRequest(req, b.secret, now, body)
	return req, nil
}
