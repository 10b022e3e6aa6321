package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bench/loadgen"
	"github.com/tokken/tokken/bench/socketfake"
)

func TestEnvelopesCarryLoadgensRequests(t *testing.T) {
	tests := []struct {
		name        string
		payload     loadgen.Payload
		wantType    string
		wantAccepts bool
		// decode parses the envelope's payload as slack-go's socketmode
		// client does and returns its trigger id and what must match.
		decode func(t *testing.T, payload []byte) (trigger string, ok bool)
	}{
		{
			name: "slash command", payload: payloads[0], wantType: socketfake.TypeSlashCommands, wantAccepts: true,
			decode: func(t *testing.T, payload []byte) (string, bool) {
				var fields map[string]any
				if err := json.Unmarshal(payload, &fields); err != nil {
					t.Fatal(err)
				}
				for k, v := range fields {
					if _, ok := v.(string); !ok {
						t.Errorf("field %s is %T; Slack sends every slash command field as a string", k, v)
					}
				}
				var cmd slack.SlashCommand
				if err := json.Unmarshal(payload, &cmd); err != nil {
					t.Fatalf("slack-go cannot parse the slash command: %v", err)
				}
				return cmd.TriggerID, cmd.Command == "/access" && cmd.Text == "help" && cmd.UserID == loadgen.UserID
			},
		},
		{
			name: "button click", payload: payloads[1], wantType: socketfake.TypeInteractive, wantAccepts: false,
			decode: func(t *testing.T, payload []byte) (string, bool) {
				var ic slack.InteractionCallback
				if err := json.Unmarshal(payload, &ic); err != nil {
					t.Fatalf("slack-go cannot parse the interaction: %v", err)
				}
				acts := ic.ActionCallback.BlockActions
				return ic.TriggerID, ic.Type == slack.InteractionTypeBlockActions && len(acts) == 1 &&
					acts[0].ActionID == "alert.ack" && acts[0].Value == "bench:no-such-alert"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			envs, err := newEnvelopes(tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			var triggers []string
			for _, seq := range []uint64{1, 2, 12345} {
				env := envs.Envelope(seq)
				if env.Type != tt.wantType || env.AcceptsResponsePayload != tt.wantAccepts {
					t.Errorf("envelope %d: type %s accepts %v", seq, env.Type, env.AcceptsResponsePayload)
				}
				if _, err := socketfake.AppendEnvelope(nil, env); err != nil {
					t.Errorf("envelope %d: %v", seq, err)
				}
				if len(env.ID) != 36 || strings.Count(env.ID, "-") != 4 || seen[env.ID] {
					t.Errorf("envelope id %q: want a fresh UUID-shaped id", env.ID)
				}
				seen[env.ID] = true
				trigger, ok := tt.decode(t, env.Payload)
				if !ok {
					t.Errorf("envelope %d does not carry loadgen's request: %s", seq, env.Payload)
				}
				triggers = append(triggers, trigger)
			}
			// The same trigger ids loadgen gives the HTTP request of each
			// number, minus its own random part.
			for i, seq := range []string{"1", "2", "12345"} {
				if !strings.HasPrefix(triggers[i], seq+".") || strings.TrimPrefix(triggers[i], seq) != strings.TrimPrefix(triggers[0], "1") {
					t.Errorf("trigger ids %v: want <seq>.<run> with one run", triggers)
				}
			}
		})
	}
	if _, err := newEnvelopes(loadgen.Payload{Kind: "event"}); err == nil {
		t.Error("newEnvelopes accepted an unknown kind")
	}
}

func TestLoadgenBodyMatchesEnvelopeFields(t *testing.T) {
	// A slash command over Socket Mode carries exactly the form fields
	// loadgen sends over HTTP.
	b, err := loadgen.NewBuilder(payloads[0], []byte("s"))
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(string(b.Body(7)))
	if err != nil {
		t.Fatal(err)
	}
	envs, err := newEnvelopes(payloads[0])
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]string
	if err := json.Unmarshal(envs.Envelope(7).Payload, &fields); err != nil {
		t.Fatal(err)
	}
	if len(fields) != len(form) {
		t.Errorf("envelope has %d fields, the form %d", len(fields), len(form))
	}
	for k := range form {
		if k == "trigger_id" {
			continue // random part differs between builders
		}
		if fields[k] != form.Get(k) {
			t.Errorf("field %s = %q, form has %q", k, fields[k], form.Get(k))
		}
	}
}

func TestExpectationCheck(t *testing.T) {
	cmd, click := expectations[loadgen.KindCommand], expectations[loadgen.KindInteraction]
	tests := []struct {
		name    string
		x       expectation
		payload string
		wantErr string
	}{
		{"help text", cmd, `{"response_type":"ephemeral","text":"Ask for time-boxed AWS access: …"}`, ""},
		{"other text", cmd, `{"response_type":"ephemeral","text":"Unknown command /access"}`, "lacks"},
		{"text elsewhere only", cmd, `{"blocks":[{"text":"time-boxed AWS access"}]}`, "no text"},
		{"no payload", cmd, ``, "without a payload"},
		{"payload not JSON", cmd, `time-boxed AWS access`, "no text"},
		{"empty click ack", click, ``, ""},
		{"click ack with a payload", click, `{"text":"hi"}`, "want none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ack := socketfake.Ack{EnvelopeID: "e"}
			if tt.payload != "" {
				ack.Payload = json.RawMessage(tt.payload)
			}
			err := tt.x.check(ack)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("check = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("check = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
