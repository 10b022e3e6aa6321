package domainui

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/infra/slackapi"
	"github.com/tokken/tokken/infra/windows"
	"github.com/tokken/tokken/testkit/botfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newHandler(t *testing.T, views ViewOpener) (*Handler, *botfake.Queue) {
	t.Helper()
	q := &botfake.Queue{}
	h, err := New(Deps{Queue: q, Views: views, Tags: windows.DefaultScheme(), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return h, q
}

func TestCommand(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		wantJob bool
		verb    domainjoin.Verb
		want    []string // substrings of the immediate answer
	}{
		{"help", "help", false, "", []string{"Usage:", "&lt;instance&gt;"}},
		{"empty is help", "", false, "", []string{"Usage:"}},
		{"typo", "jion i-0abc123def4567890", false, "", []string{`Unknown subcommand "jion"`, "Usage:"}},
		{"no instance", "join", false, "", []string{"Say which instance"}},
		{"bad option", "join web --now", false, "", []string{`Unknown option "--now"`}},
		{"force on status", "status web --force", false, "", []string{"--force applies to join and leave"}},
		{"injection echoed escaped", "<!channel> x", false, "", []string{"&lt;!channel&gt;"}},
		{"join", "join i-0abc123def4567890", true, domainjoin.VerbJoin, []string{"Checking i-0abc123def4567890", "join the domain", "d-"}},
		{"leave by name forced", "leave \"web 01\" --force", true, domainjoin.VerbLeave, []string{"Checking web 01", "(forced)"}},
		{"status", "status web-01", true, domainjoin.VerbStatus, []string{"Looking up web-01"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, q := newHandler(t, nil)
			cmd := slack.SlashCommand{Command: "/domain", Text: tt.text, UserID: "U0ALICE01", ChannelID: "C0OPS0001", ResponseURL: "https://hooks.slack.com/commands/T/1/x"}
			msg, err := h.Command(context.Background(), cmd)
			if err != nil {
				t.Fatal(err)
			}
			if msg.ResponseType != slack.ResponseTypeEphemeral {
				t.Errorf("answer is %q, want ephemeral", msg.ResponseType)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg.Text, w) {
					t.Errorf("answer %q lacks %q", msg.Text, w)
				}
			}
			if strings.Contains(msg.Text, "<!channel>") {
				t.Errorf("answer echoes unescaped mention: %q", msg.Text)
			}
			jobs := q.Jobs()
			if !tt.wantJob {
				if len(jobs) != 0 {
					t.Fatalf("refusal enqueued %v", jobs)
				}
				return
			}
			if len(jobs) != 1 || jobs[0].Kind != domainjoin.KindCommand {
				t.Fatalf("jobs = %+v, want one %s", jobs, domainjoin.KindCommand)
			}
			var req domainjoin.CommandRequest
			if err := json.Unmarshal(jobs[0].Payload, &req); err != nil {
				t.Fatal(err)
			}
			if req.OpID != jobs[0].ID || req.Command.Verb != tt.verb || req.Principal.ID != "U0ALICE01" {
				t.Errorf("request = %+v (job %s)", req, jobs[0].ID)
			}
			if req.ReplyTo != (domainjoin.ReplyTo{User: "U0ALICE01", Channel: "C0OPS0001", ResponseURL: cmd.ResponseURL}) {
				t.Errorf("reply_to = %+v", req.ReplyTo)
			}
		})
	}
}

func TestCommandQueueFailureIsAnError(t *testing.T) {
	h, q := newHandler(t, nil)
	q.Fail(errors.New("queue down"))
	if _, err := h.Command(context.Background(), slack.SlashCommand{Text: "join web", UserID: "U0ALICE01"}); err == nil {
		t.Fatal("a join that could not be queued must fail (the router apologises with a reference)")
	}
}

func click(action, value string) slack.InteractionCallback {
	var ic slack.InteractionCallback
	ic.Type = slack.InteractionTypeBlockActions
	ic.User.ID = "U0BOB0001"
	ic.TriggerID = "123.456.abc"
	ic.Container.ChannelID = "C0OPS0001"
	ic.ActionCallback.BlockActions = []*slack.BlockAction{{ActionID: action, Value: value}}
	return ic
}

func decision(t *testing.T, j bot.Job) domainjoin.DecisionRequest {
	t.Helper()
	var r domainjoin.DecisionRequest
	if err := json.Unmarshal(j.Payload, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestClicksQueueDecisions(t *testing.T) {
	for _, tt := range []struct{ action, kind string }{
		{ActionApprove, domainjoin.KindApprove},
		{ActionCancel, domainjoin.KindCancel},
	} {
		t.Run(tt.action, func(t *testing.T) {
			h, q := newHandler(t, nil)
			body, err := h.Interaction(context.Background(), click(tt.action, "d-0123456789ab"))
			if err != nil || body != nil {
				t.Fatalf("body %v err %v", body, err)
			}
			jobs := q.Jobs()
			if len(jobs) != 1 || jobs[0].Kind != tt.kind {
				t.Fatalf("jobs = %+v", jobs)
			}
			r := decision(t, jobs[0])
			want := domainjoin.DecisionRequest{OpID: "d-0123456789ab", By: bot.Principal{ID: "U0BOB0001"},
				ReplyTo: domainjoin.ReplyTo{User: "U0BOB0001", Channel: "C0OPS0001"}}
			if r.OpID != want.OpID || r.By.ID != want.By.ID || r.ReplyTo != want.ReplyTo {
				t.Errorf("decision = %+v, want %+v", r, want)
			}
		})
	}
	t.Run("forged value", func(t *testing.T) {
		h, q := newHandler(t, nil)
		if _, err := h.Interaction(context.Background(), click(ActionApprove, "r-notadomainop")); err != nil {
			t.Fatal(err)
		}
		if len(q.Jobs()) != 0 {
			t.Fatal("a button without a domain operation id was queued")
		}
	})
}

// TestDenyAsksForAReason opens the modal through the real Slack client
// against the fake, then submits it blank (refused in the modal) and with a
// reason (queued).
func TestDenyAsksForAReason(t *testing.T) {
	fake := slackfake.New(t)
	client := slackapi.New(fake.Token(), slackapi.Options{APIURL: fake.APIURL(), Logger: quiet()})
	h, q := newHandler(t, client)

	ic := click(ActionDeny, "d-0123456789ab")
	ic.TriggerID = fake.TriggerID("U0BOB0001")
	if _, err := h.Interaction(context.Background(), ic); err != nil {
		t.Fatal(err)
	}
	views := fake.Views()
	if len(views) != 1 || views[0].Request.CallbackID != CallbackDeny || views[0].Request.PrivateMetadata != "d-0123456789ab" {
		t.Fatalf("views = %+v", views)
	}
	if len(q.Jobs()) != 0 {
		t.Fatal("deny queued before a reason was given")
	}

	submit := func(reason string) any {
		var sub slack.InteractionCallback
		sub.Type = slack.InteractionTypeViewSubmission
		sub.User.ID = "U0BOB0001"
		sub.View.CallbackID = CallbackDeny
		sub.View.PrivateMetadata = "d-0123456789ab"
		sub.View.State = &slack.ViewState{Values: map[string]map[string]slack.BlockAction{
			blockReason: {actionReason: {Value: reason}},
		}}
		body, err := h.Interaction(context.Background(), sub)
		if err != nil {
			t.Fatal(err)
		}
		return body
	}
	body := submit("   ")
	resp, ok := body.(*slack.ViewSubmissionResponse)
	if !ok || resp.ResponseAction != slack.RAErrors || resp.Errors[blockReason] == "" {
		t.Fatalf("blank reason answered %#v, want errors on %q", body, blockReason)
	}
	if len(q.Jobs()) != 0 {
		t.Fatal("blank reason queued a denial")
	}
	if body := submit("change freeze until Monday"); body != nil {
		t.Fatalf("valid submission answered %#v, want nil (close the modal)", body)
	}
	jobs := q.Jobs()
	if len(jobs) != 1 || jobs[0].Kind != domainjoin.KindDeny {
		t.Fatalf("jobs = %+v", jobs)
	}
	if r := decision(t, jobs[0]); r.Reason != "change freeze until Monday" || r.By.ID != "U0BOB0001" || r.OpID != "d-0123456789ab" {
		t.Errorf("deny = %+v", r)
	}
}

func TestDenyWithExpiredTriggerFails(t *testing.T) {
	fake := slackfake.New(t)
	client := slackapi.New(fake.Token(), slackapi.Options{APIURL: fake.APIURL(), Logger: quiet()})
	h, _ := newHandler(t, client)
	ic := click(ActionDeny, "d-0123456789ab")
	ic.TriggerID = fake.TriggerID("U0BOB0001")
	fake.ExpireTrigger(ic.TriggerID)
	if _, err := h.Interaction(context.Background(), ic); err == nil {
		t.Fatal("an expired trigger must fail the interaction so the router forgets it and a second click works")
	}
}

func tagEvent(t *testing.T, resource string, detail map[string]any) events.EventBridgeEvent {
	t.Helper()
	raw, err := json.Marshal(detail)
	if err != nil {
		t.Fatal(err)
	}
	return events.EventBridgeEvent{
		ID: "ev-1", Source: TagEventSource, DetailType: TagEventDetailType, Time: t0,
		Resources: []string{resource}, Detail: raw,
	}
}

const instanceARN = "arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0abc123def4567890"

func TestParseTagEvent(t *testing.T) {
	ec2 := func(extra map[string]any) map[string]any {
		d := map[string]any{"service": "ec2", "resource-type": "instance", "version": 3,
			"changed-tag-keys": []string{"domain-status"}, "tags": map[string]string{"domain-status": "joined"}}
		for k, v := range extra {
			d[k] = v
		}
		return d
	}
	tests := []struct {
		name     string
		resource string
		detail   map[string]any
		wantID   string
		wantErr  string
	}{
		{"instance", instanceARN, ec2(nil), "i-0abc123def4567890", ""},
		{"gov partition short id", "arn:aws-us-gov:ec2:us-gov-west-1:123456789012:instance/i-0abc1234", ec2(nil), "i-0abc1234", ""},
		{"volume", "arn:aws:ec2:ap-northeast-1:123456789012:volume/vol-1", ec2(map[string]any{"resource-type": "volume"}), "", ErrNotInstance.Error()},
		{"s3", "arn:aws:s3:::bucket", ec2(map[string]any{"service": "s3", "resource-type": "bucket"}), "", ErrNotInstance.Error()},
		{"not an arn", "i-0abc123def4567890", ec2(nil), "", "not an EC2 ARN"},
		{"bad id", "arn:aws:ec2:r:1:instance/i-XYZ", ec2(nil), "", "not an instance ARN"},
		{"tags absent", instanceARN, ec2(map[string]any{"tags": nil}), "i-0abc123def4567890", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te, _, err := ParseTagEvent(tagEvent(t, tt.resource, tt.detail))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if te.InstanceID != tt.wantID || te.Tags == nil || !te.At.Equal(t0) {
				t.Errorf("event = %+v", te)
			}
		})
	}
	ev := tagEvent(t, instanceARN, ec2(nil))
	ev.Detail = json.RawMessage(`{"tags": [1]}`)
	if _, _, err := ParseTagEvent(ev); err == nil {
		t.Error("malformed detail accepted")
	}
	ev.Resources = nil
	ev.Detail = json.RawMessage(`{"service":"ec2","resource-type":"instance"}`)
	if _, _, err := ParseTagEvent(ev); err == nil || !strings.Contains(err.Error(), "one resource") {
		t.Errorf("no resource: err = %v", err)
	}
}

func TestTagEventQueuesOnlyRelevantChanges(t *testing.T) {
	tests := []struct {
		name    string
		changed []string
		want    bool
	}{
		{"status", []string{"domain-status"}, true},
		{"progress and other", []string{"Owner", "domain-progress"}, true},
		{"unrelated", []string{"Owner", "CostCenter"}, false},
		{"unknown change list", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, q := newHandler(t, nil)
			ev := tagEvent(t, instanceARN, map[string]any{"service": "ec2", "resource-type": "instance",
				"changed-tag-keys": tt.changed, "tags": map[string]string{"domain-status": "joined", "domain-ack": "d-1"}})
			if err := h.TagEvent(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			jobs := q.Jobs()
			if !tt.want {
				if len(jobs) != 0 {
					t.Fatalf("queued %v", jobs)
				}
				return
			}
			if len(jobs) != 1 || jobs[0].Kind != domainjoin.KindTagEvent || jobs[0].ID != "tag-event/ev-1" {
				t.Fatalf("jobs = %+v", jobs)
			}
			var te domainjoin.TagEvent
			if err := json.Unmarshal(jobs[0].Payload, &te); err != nil {
				t.Fatal(err)
			}
			if te.InstanceID != "i-0abc123def4567890" || te.Tags["domain-ack"] != "d-1" {
				t.Errorf("payload = %+v", te)
			}
		})
	}
	t.Run("malformed is dropped", func(t *testing.T) {
		h, q := newHandler(t, nil)
		ev := tagEvent(t, "garbage", map[string]any{"service": "ec2", "resource-type": "instance"})
		if err := h.TagEvent(context.Background(), ev); err != nil {
			t.Fatalf("a malformed event must not be retried: %v", err)
		}
		if len(q.Jobs()) != 0 {
			t.Fatal("malformed event queued")
		}
	})
}

func FuzzParseTagEvent(f *testing.F) {
	f.Add(instanceARN, []byte(`{"service":"ec2","resource-type":"instance","changed-tag-keys":["domain-status"],"tags":{"domain-status":"joined"}}`))
	f.Add("arn:aws:ec2:r:1:instance/i-", []byte(`{"service":"ec2","resource-type":"instance","tags":null}`))
	f.Add("arn:::::", []byte(`{}`))
	f.Fuzz(func(t *testing.T, resource string, detail []byte) {
		ev := events.EventBridgeEvent{Source: TagEventSource, DetailType: TagEventDetailType, Resources: []string{resource}, Detail: detail, Time: time.Unix(0, 0)}
		te, _, err := ParseTagEvent(ev)
		if err != nil {
			return
		}
		if !bot.IsInstanceID(te.InstanceID) || te.Tags == nil {
			t.Fatalf("accepted %q %q as %+v", resource, detail, te)
		}
	})
}
