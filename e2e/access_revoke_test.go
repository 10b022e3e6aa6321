package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/auditlog"
	"github.com/tokken/tokken/testkit/slackfake"
)

// auditLine waits for the audit channel line of action on request id and
// returns it.
func (w *accessWorld) auditLine(id, action string) string {
	w.t.Helper()
	var line string
	w.slack.WaitFor(w.t, waitAccess, func(f *slackfake.Fake) bool {
		for _, m := range f.Messages(auditChannel) {
			if strings.Contains(m.Text, "*"+action+"*") && strings.Contains(m.Text, id) {
				line = m.Text
				return true
			}
		}
		return false
	})
	return line
}

// TestAccessRevokeReasons: the reason typed after `/access revoke r-…`,
// by the requester or by an approver, is on the card, in every audited
// transition it caused (channel line and stored event), and in the
// requester's DM, which names who ended access.
func TestAccessRevokeReasons(t *testing.T) {
	t.Parallel()
	w := newAccessWorld(t, policyDir)
	tests := []struct {
		name, by, reason string
		wantDM           string // how the requester's DM names who ended it
		wantCause        access.Cause
	}{
		{"requester", requester, "finished early <!here>", "was ended by you at", access.CauseDone},
		{"approver", approver1, "key seen in a screen share", "was revoked by <@" + approver1 + "> at", access.CauseRevoked},
	}
	for _, tt := range tests {
		id, _ := w.approvedRequest("prod-readonly 1h audit the bucket policies")
		r, _ := w.command(tt.by, "revoke "+id+" "+tt.reason)
		if !strings.Contains(r.Text, "Ending access") {
			t.Fatalf("%s: /access revoke answered %q", tt.name, r.Text)
		}
		got := w.waitState(id, access.StateRevoked)
		escaped := strings.ReplaceAll(strings.ReplaceAll(tt.reason, "<", "&lt;"), ">", "&gt;")
		if got.End.Cause != tt.wantCause || got.End.Why != tt.reason {
			t.Errorf("%s: end %+v", tt.name, got.End)
		}
		if msg := w.waitMessage(id, "Revoked", escaped); strings.Contains(msg, "I'm done") {
			t.Errorf("%s: the card shows I'm done instead of the reason: %s", tt.name, msg)
		}
		dm := w.dmWith(requester, escaped)
		if !strings.Contains(dm, tt.wantDM) || strings.Contains(dm, "revoked ended") {
			t.Errorf("%s: the requester's DM reads %s, want %q … %q", tt.name, dm, tt.wantDM, escaped)
		}
		for _, action := range []string{access.ActEnding, access.ActRevoked} {
			if line := w.auditLine(id, action); !strings.Contains(line, "“"+escaped+"”") {
				t.Errorf("%s: audit line %q lacks the reason", tt.name, line)
			}
		}
		events, err := auditlog.Read(context.Background(), w.store, auditlog.Query{Subject: id})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if (e.Action == access.ActEnding || e.Action == access.ActRevoked) &&
				(e.Reason != tt.reason || e.Detail["cause"] != string(tt.wantCause)) {
				t.Errorf("%s: stored event %s has reason %q, cause %q", tt.name, e.Action, e.Reason, e.Detail["cause"])
			}
		}
	}
}
