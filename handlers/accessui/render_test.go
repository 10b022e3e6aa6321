package accessui

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
)

var (
	t0    = time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	tokyo = func() *time.Location { l, _ := time.LoadLocation("Asia/Tokyo"); return l }()
)

func baseRequest() access.Request {
	return access.Request{
		ID: "r-7k3q9x0m2c4d", Requester: "U0ALICE001", Profile: "prod-ssm", Kind: access.KindSSM,
		Targets:  []bot.Target{{ID: "i-0abc123def4567890", Tags: map[string]string{"Name": "web-01"}}},
		Duration: 30 * time.Minute, Reason: "fix <!channel> & go", Created: t0, ApprovalsNeeded: 2,
		Window: access.Window{ActivatedAt: t0, ExpiresAt: t0.Add(30 * time.Minute)},
	}
}

func rendered(r access.Request) string {
	m := RenderRequest(r, access.Profile{Name: r.Profile, Description: "A shell <on> prod"}, tokyo)
	b, _ := json.Marshal(m.Attachments)
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(m.Text + string(b))
}

func TestRenderRequestStates(t *testing.T) {
	tests := []struct {
		name   string
		change func(*access.Request)
		want   []string
		not    []string
	}{
		{"pending", func(r *access.Request) {
			r.State = access.StatePending
			r.Approvals = []access.Approval{{By: "U0BOB00001", At: t0}}
		}, []string{"Waiting for approval", "1 of 2", "<@U0BOB00001>", ActionApprove, ActionDeny, ColorPending, "fix &lt;!channel&gt; &amp; go", "A shell &lt;on&gt; prod", "web-01"},
			[]string{"<!channel>", ActionRevoke}},
		{"active", func(r *access.Request) {
			r.State = access.StateActive
			r.Approvals = []access.Approval{{By: "U0BOB00001"}, {By: "U0CAROL001"}}
		}, []string{"Active", "<!date^" + "1772533800" + "^{time}|19:30 JST>", "<@U0BOB00001>, <@U0CAROL001>", ActionRevoke, ColorActive},
			[]string{ActionApprove, ActionReview}},
		{"active break-glass", func(r *access.Request) {
			r.State = access.StateActive
			r.BreakGlass = &access.BreakGlass{Reason: "sev1", At: t0}
		}, []string{"Break-glass", NeedsReviewText, ActionReview, ActionRevoke}, nil},
		{"expired reviewed", func(r *access.Request) {
			r.State = access.StateExpired
			r.BreakGlass = &access.BreakGlass{Reason: "sev1", ReviewedBy: "U0BOB00001"}
			r.End = &access.End{Cause: access.CauseExpired, By: access.System, Sessions: 2}
		}, []string{"Expired", "2 SSM sessions terminated", "reviewed by <@U0BOB00001>", ColorEnded}, []string{ActionReview, ActionRevoke}},
		{"revoked", func(r *access.Request) {
			r.State = access.StateRevoked
			r.End = &access.End{Cause: access.CauseRevoked, By: "U0BOB00001", Why: "done <here>", At: t0.Add(5 * time.Minute), Sessions: 1}
		}, []string{"Revoked", "by <@U0BOB00001>", "done &lt;here&gt;", "1 SSM session terminated"}, nil},
		{"done", func(r *access.Request) {
			r.State = access.StateRevoked
			r.End = &access.End{Cause: access.CauseDone, By: "U0ALICE001", At: t0}
		}, []string{"I'm done"}, nil},
		{"denied", func(r *access.Request) {
			r.State = access.StateDenied
			r.Denial = &access.Denial{By: "U0BOB00001", Why: "not <today>", At: t0}
		}, []string{"Denied", "<@U0BOB00001>", "not &lt;today&gt;", ColorDenied}, []string{ActionApprove}},
		{"failed", func(r *access.Request) {
			r.State = access.StateFailed
			r.Failure = &access.Failure{What: "AWS said no", Do: "ask again"}
		}, []string{"Failed", "AWS said no", "What to do:", "ask again"}, nil},
		{"revoke failed", func(r *access.Request) {
			r.State = access.StateRevokeFailed
			r.End = &access.End{Cause: access.CauseRevoked, By: "U0BOB00001", LastError: "TerminateSession: 500"}
		}, []string{RevokeFailedText, ColorDanger, "TerminateSession: 500"}, []string{ActionRevoke}},
		{"pending extension", func(r *access.Request) {
			r.State = access.StateActive
			r.Extensions = []access.Extension{{ID: "x-1", Duration: time.Hour, Reason: "more <time>", State: access.ExtensionPending}}
		}, []string{"Extension asked", "1h more", "more &lt;time&gt;", ActionApproveExtension, ActionDenyExtension}, nil},
		{"cancelled", func(r *access.Request) {
			r.State = access.StateCancelled
			r.History = []access.HistoryRow{{Actor: access.System, Action: access.ActCancelled, Note: "no decision within 24h"}}
		}, []string{"Cancelled", "by tokken: no decision within 24h"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := baseRequest()
			tt.change(&r)
			got := rendered(r)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("unexpected %q in\n%s", n, got)
				}
			}
		})
	}
}

func TestButtonValuesCarryTheRequestIDOnly(t *testing.T) {
	r := baseRequest()
	r.State = access.StatePending
	m := RenderRequest(r, access.Profile{}, time.UTC)
	b, _ := json.Marshal(m.Attachments)
	var doc []struct {
		Blocks []struct {
			Elements []struct{ Value string } `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, bl := range doc[0].Blocks {
		for _, e := range bl.Elements {
			if e.Value != "" {
				n++
				if e.Value != r.ID {
					t.Errorf("button value %q, want the request id", e.Value)
				}
			}
		}
	}
	if n != 2 {
		t.Errorf("%d buttons with values, want 2", n)
	}
}

func TestRenderCredentials(t *testing.T) {
	r := baseRequest()
	c := access.Credentials{AccessKeyID: "ASIAX", SecretAccessKey: "sekret", SessionToken: "tok", Expiration: t0.Add(time.Hour),
		ConsoleURL: "https://signin.aws.amazon.com/federation?Action=login&SigninToken=abc"}
	m := RenderCredentials(r, c, t0.Add(30*time.Minute), time.UTC, "ap-northeast-1")
	text := m.Blocks[0]
	b, _ := json.Marshal(text)
	got := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b))
	for _, w := range []string{"export AWS_ACCESS_KEY_ID=ASIAX", "export AWS_SECRET_ACCESS_KEY=sekret", "export AWS_SESSION_TOKEN=tok",
		"export AWS_REGION=ap-northeast-1", "aws ssm start-session --target i-0abc123def4567890", "AWS-StartPortForwardingSession",
		"<https://signin.aws.amazon.com/federation?Action=login&amp;SigninToken=abc|open the AWS console>"} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in %s", w, got)
		}
	}
	if strings.Contains(m.Text, "sekret") {
		t.Error("the notification text carries the secret")
	}
	if len(m.Blocks) != 1 {
		t.Errorf("credentials outlasting the window offer new ones: %d blocks", len(m.Blocks))
	}
	c.ConsoleURL = ""
	r.Kind, r.Targets = access.KindSTS, nil
	b, _ = json.Marshal(RenderCredentials(r, c, t0, time.UTC, "").Blocks)
	if !strings.Contains(string(b), "no sign-in link") || strings.Contains(string(b), "start-session") {
		t.Errorf("sts grant without console link: %s", b)
	}
}

// TestRenderCredentialsRenewable: credentials that expire before the window
// end say both times and carry the "New credentials" button (the request
// id its only value) and the command that does the same.
func TestRenderCredentialsRenewable(t *testing.T) {
	r := baseRequest()
	r.Kind, r.Targets = access.KindSTS, nil
	c := access.Credentials{AccessKeyID: "ASIAX", SecretAccessKey: "sekret", SessionToken: "tok", Expiration: t0.Add(time.Hour)}
	b, _ := json.Marshal(RenderCredentials(r, c, t0.Add(3*time.Hour), time.UTC, "").Blocks)
	got := string(b)
	for _, w := range []string{"these credentials expire at", "11:00 UTC", "your access lasts until", "13:00 UTC",
		"/access creds " + r.ID, `"action_id":"` + ActionNewCredentials + `"`, `"value":"` + r.ID + `"`, "New credentials can be asked until"} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in %s", w, got)
		}
	}
}

// TestRenderTellRefused: a refused activation tells the requester what
// failed and what to do.
func TestRenderTellRefused(t *testing.T) {
	r := baseRequest()
	r.State = access.StateFailed
	r.Failure = &access.Failure{What: "tokken refused to grant this access: 0 of the 1 approvals needed count", Do: "Ask again"}
	if m := RenderTell(r, access.ActRefused, time.UTC); !strings.Contains(m.Text, "failed: tokken refused") || !strings.Contains(m.Text, "Ask again") {
		t.Errorf("refused activation DM: %q", m.Text)
	}
	// New credentials refused: the grant stays active.
	r.State, r.Failure = access.StateActive, nil
	r.History = append(r.History, access.HistoryRow{Action: access.ActRefused, Note: access.NoteNewCredentials + "the grant's window is not what its approvals gave"})
	if m := RenderTell(r, access.ActRefused, time.UTC); !strings.Contains(m.Text, "New credentials for") || !strings.Contains(m.Text, "window is not what") ||
		strings.Contains(m.Text, "extension") {
		t.Errorf("refused new credentials DM: %q", m.Text)
	}
}

func TestEscapeTextKeepsMentions(t *testing.T) {
	tests := map[string]string{
		"Too late: this is already approved by <@U0BOB00001>.": "Too late: this is already approved by <@U0BOB00001>.",
		`"<!channel>" is not a profile name`:                   `"&lt;!channel&gt;" is not a profile name`,
		"a & b <https://evil|x>":                               "a &amp; b &lt;https://evil|x&gt;",
		"<@lowercase>":                                         "&lt;@lowercase&gt;",
	}
	for in, want := range tests {
		if got := escapeText(in); got != want {
			t.Errorf("escapeText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRenderTell(t *testing.T) {
	r := baseRequest()
	r.State = access.StateActive
	tests := []struct {
		action string
		want   string
		grant  bool // carries I'm done and Extend
	}{
		{access.ActActive, "is active until", true},
		{access.ActExtended, "is extended until", true},
		{access.ActExpired, "expired", false},
		{access.ActRevokeFailed, "could not yet confirm", false},
		{access.ActExtendLapsed, "lapsed", false},
		{access.ActRefused, "was refused: extension x-1: 0 of the 1 approvals", false},
	}
	r.History = append(r.History, access.HistoryRow{Actor: access.System, Action: access.ActRefused,
		Note: "extension x-1: 0 of the 1 approvals the extension needs count"})
	for _, tt := range tests {
		m := RenderTell(r, tt.action, time.UTC)
		b, _ := json.Marshal(m.Blocks)
		if !strings.Contains(m.Text, tt.want) || strings.Contains(string(b), ActionDone) != tt.grant || strings.Contains(string(b), ActionExtend) != tt.grant {
			t.Errorf("%s: %q %s", tt.action, m.Text, b)
		}
	}
}

// TestRenderListOffersNewCredentials: `/access list` names `/access creds`
// when an active grant has credentials to renew, and not otherwise.
func TestRenderListOffersNewCredentials(t *testing.T) {
	r := baseRequest()
	r.State = access.StatePending
	if got := RenderList([]access.Request{r}, time.UTC); strings.Contains(got, "/access creds") {
		t.Errorf("a pending request offers new credentials: %s", got)
	}
	r.State, r.Window = access.StateActive, access.Window{ActivatedAt: t0, ExpiresAt: t0.Add(3 * time.Hour)}
	if got := RenderList([]access.Request{r}, time.UTC); !strings.Contains(got, "`/access creds <request-id>`") {
		t.Errorf("an active grant does not offer new credentials: %s", got)
	}
}
