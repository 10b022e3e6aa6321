package release

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseNotification(t *testing.T) {
	body := `{"region":"us-east-2","consoleLink":"https://console.aws.amazon.com/codepipeline/home?region=us-east-2#/view/MyFirstPipeline",
"approval":{"pipelineName":"MyFirstPipeline","stageName":"MyApprovalStage","actionName":"MyApprovalAction",
"token":"1a2b3c4d-573f-4ea7-a67e-0123456789ab","expires":"2016-07-07T20:22Z","customData":"Review"}}`
	n, err := ParseNotification([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if !n.ExpiresAt().Equal(time.Date(2016, 7, 7, 20, 22, 0, 0, time.UTC)) {
		t.Errorf("expires = %v", n.ExpiresAt())
	}
	if !IsNotification(body) || IsNotification(`{"AlarmName":"x"}`) || IsNotification("not json") {
		t.Error("IsNotification does not tell approvals from alarms")
	}
	if _, err := ParseNotification([]byte(`{"approval":{"pipelineName":"p"}}`)); err == nil || !strings.Contains(err.Error(), "approval.token") {
		t.Errorf("missing fields: %v", err)
	}
	a, b := ApprovalID("p", "s", "a", "t1"), ApprovalID("p", "s", "a", "t2")
	if a == b || a != ApprovalID("p", "s", "a", "t1") || !strings.HasPrefix(a, "rel-") {
		t.Errorf("ApprovalID: %s, %s", a, b)
	}
}

func TestSummaryFitsCodePipeline(t *testing.T) {
	long := strings.Repeat("é", 400)
	s := Summary(Approval{Approvals: []Vote{{By: "U1", Reason: long}, {By: "U2", Reason: long}}})
	if len(s) > MaxSummary || !utf8.ValidString(s) || !strings.HasPrefix(s, "Approved in Slack by U1") {
		t.Errorf("summary of %d characters: %.80s…", utf8.RuneCountInString(s), s)
	}
	s = Summary(Approval{Rejection: &Vote{By: "U3", Reason: "breaks login"}})
	if s != "Rejected in Slack by U3: breaks login via tokken" {
		t.Errorf("rejection summary = %q", s)
	}
}
