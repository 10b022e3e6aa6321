package codepipe_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/release"
	"github.com/tokken/tokken/infra/codepipe"
	"github.com/tokken/tokken/testkit/awsfake"
)

func TestApprovalThroughTheSDK(t *testing.T) {
	ctx := context.Background()
	f := awsfake.New(t)
	c := codepipe.New(f.Config(ctx))
	cp := f.CodePipeline()
	// An older execution waits at another stage; the newer one at ours.
	cp.WaitForApproval("web-prod", "Staging", "Approve", "Webhook", "old", awsfake.Revision{Name: "Source", RevisionID: "aaa"})
	exID, token := cp.WaitForApproval("web-prod", "Release", "Approve", "StartPipelineExecution", "arn:aws:iam::123456789012:user/ci",
		awsfake.Revision{Name: "Source", RevisionID: "0123abc", Summary: "Fix checkout <b>", URL: "https://github.com/example/web/commit/0123abc"})

	ex, err := c.Execution(ctx, "web-prod", "Release", "Approve", token)
	if err != nil {
		t.Fatal(err)
	}
	if ex.ID != exID || ex.TriggerType != "StartPipelineExecution" || ex.TriggerDetail != "arn:aws:iam::123456789012:user/ci" ||
		len(ex.Revisions) != 1 || ex.Revisions[0].Summary != "Fix checkout <b>" || ex.Revisions[0].URL == "" {
		t.Fatalf("Execution = %+v, want %s with its trigger and revision", ex, exID)
	}
	if _, err := c.Execution(ctx, "web-prod", "Release", "Approve", "not-the-token"); err == nil {
		t.Error("Execution found an execution for a token nobody issued")
	}

	r := release.Result{Pipeline: "web-prod", Stage: "Release", Action: "Approve", Token: token, Approved: true, Summary: "ok by U1"}
	if err := c.PutApprovalResult(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, ok := cp.Result("web-prod", token); !ok || got.Status != "Approved" || got.Summary != "ok by U1" || got.Caller != awsfake.CallerARN {
		t.Fatalf("recorded result = %+v, %v", got, ok)
	}
	if err := c.PutApprovalResult(ctx, r); !errors.Is(err, release.ErrAlreadyCompleted) {
		t.Errorf("second decision: %v, want ErrAlreadyCompleted", err)
	}
	// The decided action shows the decision, whose summary tells tokken's
	// own from one made in the console; once a newer execution reaches the
	// stage, the old approval's outcome is no longer known.
	if out, err := c.Outcome(ctx, "web-prod", "Release", "Approve", token, exID); err != nil ||
		out != (release.Outcome{Known: true, Status: "Succeeded", Summary: "ok by U1", By: awsfake.CallerARN}) {
		t.Errorf("Outcome of the decided approval = %+v, %v", out, err)
	}
	_, newer := cp.WaitForApproval("web-prod", "Release", "Approve", "Webhook", "newer")
	if out, err := c.Outcome(ctx, "web-prod", "Release", "Approve", token, exID); err != nil || out.Known {
		t.Errorf("Outcome after a newer execution reached the stage = %+v, %v; want unknown", out, err)
	}
	if out, err := c.Outcome(ctx, "web-prod", "Release", "Approve", newer, ""); err != nil || out != (release.Outcome{Known: true, Status: "InProgress"}) {
		t.Errorf("Outcome of a waiting approval = %+v, %v", out, err)
	}
	if _, err := c.Outcome(ctx, "nope", "Release", "Approve", token, ""); !bot.IsPermanent(err) {
		t.Errorf("Outcome of an unknown pipeline: %v, want permanent", err)
	}
	r.Token = "0000"
	if err := c.PutApprovalResult(ctx, r); !errors.Is(err, release.ErrInvalidToken) {
		t.Errorf("unknown token: %v, want ErrInvalidToken", err)
	}
	_, expiring := cp.WaitForApproval("web-prod", "Release", "Approve", "Webhook", "", awsfake.Revision{})
	cp.Expire("web-prod", expiring)
	r.Token = expiring
	if err := c.PutApprovalResult(ctx, r); !errors.Is(err, release.ErrInvalidToken) {
		t.Errorf("expired token: %v, want ErrInvalidToken", err)
	}
	r.Pipeline = "nope"
	if err := c.PutApprovalResult(ctx, r); !bot.IsPermanent(err) || !strings.Contains(err.Error(), "PipelineNotFoundException") {
		t.Errorf("unknown pipeline: %v, want a permanent PipelineNotFoundException", err)
	}
	r.Pipeline, r.Summary = "web-prod", strings.Repeat("x", 513)
	if err := c.PutApprovalResult(ctx, r); err == nil {
		t.Error("a summary over 512 characters was accepted")
	}
	// Throttling is retried by the SDK.
	_, tok := cp.WaitForApproval("web-prod", "Release", "Approve", "Webhook", "")
	f.Fail(awsfake.CodePipelineService, "PutApprovalResult", 1, awsfake.Throttle)
	r.Token, r.Summary, r.Approved = tok, "no", false
	if err := c.PutApprovalResult(ctx, r); err != nil {
		t.Fatalf("throttled once: %v", err)
	}
	if got, _ := cp.Result("web-prod", tok); got.Status != "Rejected" {
		t.Errorf("rejection recorded as %+v", got)
	}

	// A retried start (same request token) returns the same execution.
	before := len(cp.Executions("web-prod"))
	id1, err := c.Start(ctx, "web-prod", "rs-1")
	if err != nil {
		t.Fatal(err)
	}
	id2, err := c.Start(ctx, "web-prod", "rs-1")
	if err != nil || id1 != id2 || len(cp.Executions("web-prod")) != before+1 {
		t.Errorf("retried start: %s then %s (%v), %d new executions", id1, id2, err, len(cp.Executions("web-prod"))-before)
	}
	if _, err := c.Start(ctx, "nope", "rs-2"); !bot.IsPermanent(err) {
		t.Errorf("start of an unknown pipeline: %v, want permanent", err)
	}
}
