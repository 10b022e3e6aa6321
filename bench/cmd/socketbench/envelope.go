package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/tokken/tokken/bench/loadgen"
	"github.com/tokken/tokken/bench/socketfake"
)

// envelopes makes the Socket Mode envelopes of one loadgen.Payload: the
// request loadgen signs for HTTP, as Slack wraps it for Socket Mode. A
// slash command's payload is its form fields as a JSON object of strings
// (Slack sends "is_enterprise_install":"false" as a string there too); an
// interaction's is the JSON loadgen puts in the form's payload field. Each
// envelope gets the trigger_id loadgen would give request seq, so tokken's
// deduplication does real work for each, and a UUID-shaped envelope_id.
type envelopes struct {
	kind    loadgen.Kind
	typ     string
	accepts bool
	// The payload is prefix + seq + run + suffix: run is the part of
	// loadgen's trigger id after the sequence number.
	prefix, run, suffix string
	idPrefix            string
}

// newEnvelopes prepares the envelopes of p.
func newEnvelopes(p loadgen.Payload) (*envelopes, error) {
	// The builder signs bodies; these are not signed (Slack authenticates
	// the socket instead), so any secret will do.
	b, err := loadgen.NewBuilder(p, []byte("socket mode requests are not signed"))
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(b.Body(0)))
	if err != nil {
		return nil, fmt.Errorf("decode loadgen's %s body: %w", p.Kind, err)
	}
	e := &envelopes{kind: p.Kind}
	var payload []byte
	var trigger string
	switch p.Kind {
	case loadgen.KindCommand:
		e.typ, e.accepts = socketfake.TypeSlashCommands, true
		fields := make(map[string]string, len(form))
		for k := range form {
			fields[k] = form.Get(k)
		}
		trigger = fields["trigger_id"]
		if payload, err = json.Marshal(fields); err != nil {
			return nil, fmt.Errorf("encode slash command payload: %w", err)
		}
	case loadgen.KindInteraction:
		// Slack sends button clicks with accepts_response_payload false:
		// the ack's payload is not shown (views and options differ).
		e.typ = socketfake.TypeInteractive
		payload = []byte(form.Get("payload"))
		var ic struct {
			TriggerID string `json:"trigger_id"`
		}
		if err := json.Unmarshal(payload, &ic); err != nil {
			return nil, fmt.Errorf("decode loadgen's interaction payload: %w", err)
		}
		trigger = ic.TriggerID
	default:
		return nil, fmt.Errorf("no Socket Mode envelope for request kind %q", p.Kind)
	}
	run, ok := strings.CutPrefix(trigger, "0")
	if !ok || run == "" {
		return nil, fmt.Errorf("loadgen's trigger id %q does not start with the request number 0", trigger)
	}
	if n := strings.Count(string(payload), `"`+trigger+`"`); n != 1 {
		return nil, fmt.Errorf("trigger id %q occurs %d times in the payload, want once", trigger, n)
	}
	e.prefix, e.suffix, _ = strings.Cut(string(payload), `"`+trigger+`"`)
	e.prefix += `"`
	e.suffix = `"` + e.suffix
	e.run = run

	var r [10]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, fmt.Errorf("envelope ids: %w", err)
	}
	h := hex.EncodeToString(r[:])
	e.idPrefix = h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-"
	return e, nil
}

// Envelope returns envelope number seq.
func (e *envelopes) Envelope(seq uint64) socketfake.Envelope {
	s := strconv.FormatUint(seq, 10)
	payload := make([]byte, 0, len(e.prefix)+len(s)+len(e.run)+len(e.suffix))
	payload = append(payload, e.prefix...)
	payload = append(payload, s...)
	payload = append(payload, e.run...)
	payload = append(payload, e.suffix...)
	id := fmt.Sprintf("%s%012x", e.idPrefix, seq)
	return socketfake.Envelope{ID: id, Type: e.typ, Payload: payload, AcceptsResponsePayload: e.accepts}
}

// expectation is what a correct ack of one kind of envelope carries.
type expectation struct {
	// Text, when set, must occur in the payload's "text" (a slash
	// command's answer): it proves tokken answered what was asked, not,
	// say, "unknown command".
	Text string
	// Empty requires an ack without a payload (a button click: tokken
	// answers the clicker with chat.postEphemeral, and Slack would ignore
	// a payload there).
	Empty bool
}

// expectations are the acks tokken must give.
var expectations = map[loadgen.Kind]expectation{
	loadgen.KindCommand:     {Text: "time-boxed AWS access"},
	loadgen.KindInteraction: {Empty: true},
}

// check returns why ack does not meet x, or nil.
func (x expectation) check(ack socketfake.Ack) error {
	if x.Empty {
		if len(ack.Payload) != 0 {
			return fmt.Errorf("ack has a payload, want none: %s", firstBytes(ack.Payload))
		}
		return nil
	}
	if x.Text == "" {
		return nil
	}
	if len(ack.Payload) == 0 {
		return errors.New("ack without a payload")
	}
	var reply struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(ack.Payload, &reply); err != nil || reply.Text == nil {
		return fmt.Errorf("ack payload has no text: %s", firstBytes(ack.Payload))
	}
	if !strings.Contains(*reply.Text, x.Text) {
		return fmt.Errorf("ack text lacks %q: %s", x.Text, firstBytes([]byte(*reply.Text)))
	}
	return nil
}

// firstBytes shortens b for an error message.
func firstBytes(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
