package domainui

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/domainjoin"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func baseOp(state domainjoin.State) domainjoin.Operation {
	return domainjoin.Operation{
		ID: "d-0123456789ab", InstanceID: "i-0abc123def4567890", InstanceName: "win-01",
		Action: domainjoin.ActionJoin, Requester: "U0ALICE01", State: state,
		Started: t0, Updated: t0,
	}
}

// actionIDs lists the action ids of the buttons in m.
func actionIDs(t *testing.T, blocks []slack.Block) []string {
	t.Helper()
	var out []string
	for _, b := range blocks {
		if a, ok := b.(*slack.ActionBlock); ok {
			for _, e := range a.Elements.ElementSet {
				btn, ok := e.(*slack.ButtonBlockElement)
				if !ok {
					t.Fatalf("unexpected element %T", e)
				}
				if btn.Value != "d-0123456789ab" {
					t.Errorf("button %s carries %q, want only the operation id", btn.ActionID, btn.Value)
				}
				out = append(out, btn.ActionID)
			}
		}
	}
	return out
}

// blocksText is the JSON of the blocks: what Slack would receive.
func blocksText(t *testing.T, blocks []slack.Block) string {
	t.Helper()
	b, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRenderButtonsAndStateByState(t *testing.T) {
	tests := []struct {
		state   domainjoin.State
		mutate  func(*domainjoin.Operation)
		buttons []string
		want    []string // substrings of the rendered blocks
	}{
		{domainjoin.StatePendingApproval, func(o *domainjoin.Operation) {
			o.NeedsApproval, o.ApprovalDeadline = true, t0.Add(4*time.Hour)
		}, []string{ActionApprove, ActionDeny, ActionCancel}, []string{"waiting for approval", "required by policy", "<@U0ALICE01>"}},
		{domainjoin.StateWaiting, func(o *domainjoin.Operation) {
			o.Deadline = t0.Add(20 * time.Minute)
			o.Seen = []domainjoin.Progress{{At: t0, Key: "domain-progress", Value: "joining"}}
		}, []string{ActionCancel}, []string{"waiting for the instance to report", "Times out", "domain-progress", "joining"}},
		{domainjoin.StateJoined, func(o *domainjoin.Operation) {
			o.NeedsApproval, o.DecidedBy = true, "U0BOB0001"
		}, nil, []string{"*joined* the domain", "approved by <@U0BOB0001>", ":white_check_mark:"}},
		{domainjoin.StateFailed, func(o *domainjoin.Operation) { o.Reason = "Add-Computer: access denied" }, nil,
			[]string{"*failed*", "Add-Computer: access denied"}},
		{domainjoin.StateTimedOut, func(o *domainjoin.Operation) { o.Reason = "no answer within 20m0s" }, nil,
			[]string{"*timed out*", "no answer within 20m0s"}},
		{domainjoin.StateDenied, func(o *domainjoin.Operation) {
			o.NeedsApproval, o.DecidedBy, o.DecisionReason = true, "U0BOB0001", "not during the freeze"
		}, nil, []string{"*denied* by <@U0BOB0001>", "not during the freeze"}},
		{domainjoin.StateCancelled, func(o *domainjoin.Operation) { o.DecidedBy, o.Reason = "tokken", "not approved within 4h0m0s" }, nil,
			[]string{"*cancelled* by tokken", "not approved within 4h0m0s"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.state), func(t *testing.T) {
			op := baseOp(tt.state)
			tt.mutate(&op)
			m := Render(op)
			if got := actionIDs(t, m.Blocks); strings.Join(got, ",") != strings.Join(tt.buttons, ",") {
				t.Errorf("buttons = %v, want %v", got, tt.buttons)
			}
			text := blocksText(t, m.Blocks)
			for _, w := range tt.want {
				if !strings.Contains(text, jsonEscaped(w)) {
					t.Errorf("rendered blocks lack %q:\n%s", w, text)
				}
			}
			if !strings.Contains(m.Text, strings.ReplaceAll(string(tt.state), "_", " ")) {
				t.Errorf("fallback text %q does not name the state", m.Text)
			}
		})
	}
}

// jsonEscaped is s as it appears inside a JSON string.
func jsonEscaped(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func TestRenderEscapesUntrustedText(t *testing.T) {
	op := baseOp(domainjoin.StateFailed)
	op.InstanceName = "<!channel> web & db"
	op.Reason = "<https://evil.example|click> failed"
	op.Seen = []domainjoin.Progress{{At: t0, Key: "domain-progress", Value: "<!here>"}}
	m := Render(op)
	text := blocksText(t, m.Blocks) + m.Text
	for _, bad := range []string{"<!channel>", "<!here>", "<https://evil"} {
		if strings.Contains(text, jsonEscaped(bad)) {
			t.Errorf("unescaped %q in %s", bad, text)
		}
	}
	for _, good := range []string{"&lt;!channel&gt; web &amp; db", "&lt;https://evil.example|click&gt;", "&lt;!here&gt;"} {
		if !strings.Contains(text, jsonEscaped(good)) {
			t.Errorf("missing escaped %q in %s", good, text)
		}
	}
	th := RenderThread([]string{"domain-status: <!channel>", "  ", "ok"})
	if th.Text != "domain-status: &lt;!channel&gt;\nok" {
		t.Errorf("thread text = %q", th.Text)
	}
	if a := RenderAlert(op, "timed out <!channel>"); strings.Contains(a.Text, "<!channel>") {
		t.Errorf("alert not escaped: %q", a.Text)
	}
}

func TestRenderProgressKeepsTheLatest(t *testing.T) {
	op := baseOp(domainjoin.StateWaiting)
	for i := range maxSeen + 3 {
		op.Seen = append(op.Seen, domainjoin.Progress{At: t0.Add(time.Duration(i) * time.Minute), Key: "domain-progress", Value: fmt.Sprintf("step-%d", i)})
	}
	text := blocksText(t, Render(op).Blocks)
	if strings.Contains(text, "= step-2") { // entries 0..8: step-2 is one of the three dropped
		t.Errorf("old progress step-2 still shown: %s", text)
	}
	for _, w := range []string{"3 earlier updates in the thread", "step-3", fmt.Sprintf("step-%d", maxSeen+2)} {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in %s", w, text)
		}
	}
}

func TestDenyModal(t *testing.T) {
	v := DenyModal("d-0123456789ab")
	if v.CallbackID != CallbackDeny || v.PrivateMetadata != "d-0123456789ab" {
		t.Fatalf("callback %q metadata %q", v.CallbackID, v.PrivateMetadata)
	}
	var found bool
	for _, b := range v.Blocks.BlockSet {
		if in, ok := b.(*slack.InputBlock); ok && in.BlockID == blockReason {
			el, ok := in.Element.(*slack.PlainTextInputBlockElement)
			found = ok && el.ActionID == actionReason && !in.Optional
		}
	}
	if !found {
		t.Fatal("the modal has no required reason input")
	}
}
