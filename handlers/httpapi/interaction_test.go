package httpapi

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/slack-go/slack"
)

// withoutSkipped clears what ParseInteraction leaves out by design, so the
// rest can be compared with slack-go's decoding field by field.
func withoutSkipped(ic slack.InteractionCallback) slack.InteractionCallback {
	for _, m := range []*slack.Message{&ic.Message, &ic.OriginalMessage} {
		m.Blocks, m.Attachments, m.Files = slack.Blocks{}, nil, nil
	}
	ic.View.Blocks = slack.Blocks{}
	return ic
}

func fixtures(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "interactions", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no interaction fixtures: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// sameAsSlackGo fails unless ParseInteraction and slack-go agree on
// payload: both refuse it, or both accept it with the same fields (but for
// the skipped blocks, attachments and files). It reports whether both
// accepted it.
func sameAsSlackGo(t testing.TB, payload []byte) bool {
	t.Helper()
	got, err := ParseInteraction(payload)
	want, wantErr := parseWithSlackGo(payload)
	if (err != nil) != (wantErr != nil) {
		// Accepting what slack-go refuses is allowed only where slack-go
		// refused a part tokken skips.
		if err == nil && acceptsWithoutSkipped(payload) {
			return false
		}
		t.Fatalf("ParseInteraction error %v, slack-go error %v for %q", err, wantErr, payload)
	}
	if err != nil {
		return false
	}
	if g, w := withoutSkipped(got), withoutSkipped(want); !reflect.DeepEqual(g, w) {
		gj, _ := json.Marshal(&g)
		wj, _ := json.Marshal(&w)
		t.Fatalf("ParseInteraction differs from slack-go for %q:\n got %s\nwant %s", payload, gj, wj)
	}
	return true
}

// acceptsWithoutSkipped reports whether slack-go accepts payload once the
// message, original message and view blocks (and message attachments and
// files) are removed: then a refusal came from a part tokken does not read.
// Keys are matched as encoding/json matches them, ignoring case ("BloCks"
// fills Blocks too).
func acceptsWithoutSkipped(payload []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(payload, &m) != nil {
		return false
	}
	for k, raw := range m {
		outer := foldedIn(k, "message", "original_message", "view")
		if outer == "" {
			continue
		}
		var inner map[string]json.RawMessage
		if json.Unmarshal(raw, &inner) != nil || inner == nil {
			continue
		}
		for ik := range inner {
			skipped := []string{"blocks"}
			if outer != "view" {
				skipped = append(skipped, "attachments", "files")
			}
			if foldedIn(ik, skipped...) != "" {
				delete(inner, ik)
			}
		}
		m[k], _ = json.Marshal(inner)
	}
	b, _ := json.Marshal(m)
	_, err := parseWithSlackGo(b)
	return err == nil
}

// foldedIn returns the name among names that key matches ignoring case, or "".
func foldedIn(key string, names ...string) string {
	for _, n := range names {
		if strings.EqualFold(key, n) {
			return n
		}
	}
	return ""
}

func TestParseInteractionMatchesSlackGo(t *testing.T) {
	for name, payload := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			if !sameAsSlackGo(t, payload) {
				t.Fatal("a fixture must decode")
			}
		})
	}
}

// TestReadInteraction: the clicks and submissions tokken handles are read
// by hand (the speed of a click depends on it), and what is read by hand
// equals what decoding the whole payload gives.
func TestReadInteraction(t *testing.T) {
	mustRead := map[string]bool{
		"block_actions_message.json": true, "block_actions_bot_message.json": true,
		"block_actions_view.json": true, "view_submission.json": true, "view_closed.json": true,
	}
	for name, payload := range fixtures(t) {
		var compact bytes.Buffer
		if err := json.Compact(&compact, payload); err != nil {
			t.Fatal(err)
		}
		for _, p := range [][]byte{payload, compact.Bytes()} {
			var read, decoded wireInteraction
			ok := readInteraction(p, &read, new(stringCache))
			if mustRead[name] && !ok {
				t.Errorf("%s: declined", name)
			}
			if !ok {
				continue
			}
			if err := jsonv1.Unmarshal(p, &decoded); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !reflect.DeepEqual(read, decoded) {
				t.Errorf("%s: read by hand\n%+v\ndecoded\n%+v", name, read, decoded)
			}
		}
	}
}

func TestParseInteractionFields(t *testing.T) {
	fx := fixtures(t)
	tests := []struct {
		file  string
		check func(ic slack.InteractionCallback) string
	}{
		{"block_actions_message.json", func(ic slack.InteractionCallback) string {
			if len(ic.ActionCallback.BlockActions) != 1 || ic.ActionCallback.BlockActions[0].ActionID != "access:approve" ||
				ic.ActionCallback.BlockActions[0].BlockID != "act" || ic.ActionCallback.BlockActions[0].Value != "req-01J" {
				return "action"
			}
			if ic.User.ID != "U0ALICE001" || ic.Container.ChannelID != "C0APPROVE1" || ic.Container.MessageTs != "1764000000.000100" ||
				ic.Message.Timestamp != "1764000000.000100" || ic.Channel.ID != "C0APPROVE1" || ic.TriggerID == "" {
				return "routing fields"
			}
			if ic.BlockActionState == nil || ic.BlockActionState.Values["act"]["access:duration"].SelectedOption.Value != "30m" {
				return "state"
			}
			if len(ic.Message.Blocks.BlockSet) != 0 || len(ic.Message.Attachments) != 0 {
				return "message blocks should be skipped"
			}
			return ""
		}},
		{"view_submission.json", func(ic slack.InteractionCallback) string {
			if ic.View.CallbackID != "access:request" || ic.View.ID != "V0VIEW0001" || ic.View.Hash == "" || ic.View.PrivateMetadata == "" {
				return "view"
			}
			if ic.View.State == nil || ic.View.State.Values["reason"]["v"].Value != "investigating *5xx* <!channel>" ||
				ic.View.State.Values["instances"]["access:instances"].SelectedOptions[0].Value != "i-0abc1234def567890" {
				return "view state"
			}
			if len(ic.ViewSubmissionCallback.ResponseURLs) != 1 {
				return "response_urls"
			}
			return ""
		}},
		{"interactive_message_legacy.json", func(ic slack.InteractionCallback) string {
			if len(ic.ActionCallback.AttachmentActions) != 1 || len(ic.ActionCallback.BlockActions) != 0 {
				return "legacy actions must stay attachment actions"
			}
			return ""
		}},
		{"dialog_submission.json", func(ic slack.InteractionCallback) string {
			if ic.State != `"vegetarian"` || ic.Submission["email"] != "sigdre@example.com" {
				return "dialog state"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ic, err := ParseInteraction(fx[tt.file])
			if err != nil {
				t.Fatal(err)
			}
			if what := tt.check(ic); what != "" {
				t.Errorf("%s: wrong %s", tt.file, what)
			}
		})
	}
}

func TestParseInteractionRefuses(t *testing.T) {
	for _, payload := range []string{"", "{", "[]", `{"type":1}`, `{"actions":{}}`, `{"type":"block_actions","state":[]}`, `{"view":{"state":"x"}}`} {
		if _, err := ParseInteraction([]byte(payload)); err == nil {
			t.Errorf("ParseInteraction(%q) accepted", payload)
		}
	}
}

// TestParseInteractionSkipsUnreadParts: a message block slack-go cannot
// decode does not stop a click tokken can handle.
func TestParseInteractionSkipsUnreadParts(t *testing.T) {
	payload := `{"type":"block_actions","user":{"id":"U1"},"message":{"ts":"1.2","blocks":[{"type":"section","text":7}]},"actions":[{"action_id":"alert:ack","block_id":"b"}]}`
	if _, err := parseWithSlackGo([]byte(payload)); err == nil {
		t.Fatal("the fixture should be one slack-go refuses")
	}
	ic, err := ParseInteraction([]byte(payload))
	if err != nil || ic.ActionCallback.BlockActions[0].ActionID != "alert:ack" || ic.Message.Timestamp != "1.2" {
		t.Fatalf("got %+v, %v", ic, err)
	}
}

// BenchmarkParseInteraction decodes a click on a bot message as Slack
// sends it (compact) and a pretty-printed one with a select's state, with
// the parser `serve` uses (shapes and strings kept between clicks).
func BenchmarkParseInteraction(b *testing.B) {
	fx := fixtures(b)
	var click bytes.Buffer
	if err := json.Compact(&click, fx["block_actions_bot_message.json"]); err != nil {
		b.Fatal(err)
	}
	for _, payload := range []struct {
		name string
		b    []byte
	}{{"click", click.Bytes()}, {"select", fx["block_actions_message.json"]}} {
		for _, bb := range []struct {
			name  string
			parse func([]byte) (slack.InteractionCallback, error)
		}{{"tokken", new(interactionParser).Parse}, {"slack-go", parseWithSlackGo}} {
			b.Run(payload.name+"/"+bb.name, func(b *testing.B) {
				b.SetBytes(int64(len(payload.b)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := bb.parse(payload.b); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// FuzzParseInteraction checks ParseInteraction against slack-go's decoder
// on arbitrary payloads: the same fields, the same refusals (except a part
// tokken skips), and no panic; and the parser serve uses, reused from one
// input to the next, against ParseInteraction.
func FuzzParseInteraction(f *testing.F) {
	for _, b := range fixtures(f) {
		f.Add(b)
		var compact bytes.Buffer
		if err := json.Compact(&compact, b); err != nil {
			f.Fatal(err)
		}
		f.Add(compact.Bytes()) // as Slack sends them
	}
	for _, s := range []string{
		`{"type":"block_actions","actions":[{"block_id":"a"}],"Actions":[{"block_id":"b"}]}`,
		`{"type":"block_actions","actions":[{"block_id":"a"}],"actions":[{"block_id":"b"}]}`,
		`{"type":"block_actions","actions":[{"block_id":"a","BLOCK_ID":"b","text":{"emoji":true,"emoji":null}}]}`,
		`{"type":"block_actions","actions":[{"Block_Id":"a"}]}`,
		`{"type":"block_actions","actions":[{"block_id":"a","block_id":null}]}`,
		`{"typ\u0065":"block_actions","user":{"id":"U1","ID":"U2"},"USER":{"name":"n"}}`,
		`{"message":{"bot_profile":{"updated":1.5}}}`,
		`{"message":{"bot_profile":{"updated":99999999999999999999}}}`,
		`{"message":{"bot_profile":null,"BOT_PROFILE":{"id":"B"},"text":"a\nb","Text":"c"}}`,
		`{"container":{"attachment_id":5,"is_ephemeral":null},"enterprise":{"id":"E"},"team":null}`,
		`{"type":"block_actions","state":{"values":{}} ,"actions":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"type":"block_actions","actions":[{"block_id":null,"action_id":"a"}]}`))
	f.Add([]byte(`{"type":"block_actions","actions":[{"block_id":"b","action_id":"a:b"}],"state":{"values":{}}}`))
	reused := new(interactionParser) // its shapes and string cache carry over between inputs
	f.Fuzz(func(t *testing.T, payload []byte) {
		sameAsSlackGo(t, payload)
		got, err := reused.Parse(payload)
		want, wantErr := ParseInteraction(payload)
		if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("reused parser gave %+v (%v) for %q, want %+v (%v)", got, err, payload, want, wantErr)
		}
	})
}

// TestParserReuseLeaksNothing: the server's parser reuses its decoding
// shapes; what one payload left in a shape must not show in the next.
func TestParserReuseLeaksNothing(t *testing.T) {
	var p interactionParser
	all := fixtures(t)
	for firstName, first := range all {
		for name, payload := range all {
			if _, err := p.Parse(first); err != nil {
				t.Fatalf("%s: %v", firstName, err)
			}
			got, err := p.Parse(payload)
			want, wantErr := ParseInteraction(payload)
			if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s after %s: reused parser gave\n%+v (%v)\nwant\n%+v (%v)", name, firstName, got, err, want, wantErr)
			}
		}
	}
}

// FuzzBlockIDIsString: where blockIDIsString answers from the bytes, it
// answers what decoding the block_id member would.
func FuzzBlockIDIsString(f *testing.F) {
	for _, s := range []string{
		`{"block_id":"b","action_id":"a"}`, `{"block_id":null}`, `{"action_id":"a"}`, `{}`, ` { "block_id" : "b" } `,
		`{"block_id":"b","block_id":1}`, `{"Block_ID":"b"}`, `{"block\u005fid":"b"}`, `{"x":{"block_id":"b"},"y":[1,"]",{}]}`,
		`{"block_id":"a\"b","z":true,"n":-1.5e3}`, `[1]`, `"block_id"`, `{"a":"\\","block_id":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return // the decoder hands UnmarshalJSON valid JSON only
		}
		block, known := blockIDIsString(b)
		if !known {
			return
		}
		var probe struct { // what UnmarshalJSON asked the decoder before
			BlockID jsonv1.RawMessage `json:"block_id,case:strict"`
		}
		if err := jsonv1.Unmarshal(b, &probe); err != nil {
			t.Fatalf("blockIDIsString(%s) answered, the decoder refused: %v", b, err)
		}
		if want := len(probe.BlockID) > 0 && probe.BlockID[0] == '"'; block != want {
			t.Fatalf("blockIDIsString(%s) = %v, decoding says %v", b, block, want)
		}
	})
}
