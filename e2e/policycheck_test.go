package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tokken/tokken/testkit/slackfake"
)

// TestPolicyCheckWarnsAboutChannels runs `tokken policy check` on the
// shipped set with a bot token: every channel the bot cannot post to (not
// a member, archived, unknown) is a warning naming its use and the fix,
// found with conversations.info and without posting anything. Without a
// token nothing is asked.
func TestPolicyCheckWarnsAboutChannels(t *testing.T) {
	t.Parallel()
	fake := slackfake.New(t)
	fake.AddChannel(approverChannel, "prod-approvals")
	fake.SetBotMember(approverChannel, false)
	fake.AddChannel(stagingChannel, "staging")
	fake.ArchiveChannel(stagingChannel)
	fake.AddChannel(auditChannel, "audit")
	for _, ch := range []string{"C0TOKKENOPS", "C0STAGING", "C0PRODALERTS", "C0ALERTS", "C0DEVALERTS", "C0RELEASE1"} {
		fake.AddChannel(ch, strings.ToLower(ch))
	}
	dir := t.TempDir()
	run := func(env []string) string {
		t.Helper()
		cmd := exec.Command(binary, "policy", "check", "--dir", policyDir)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tokken policy check: %v\n%s", err, out)
		}
		return string(out)
	}
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	out := run(append(base, "SLACK_BOT_TOKEN="+fake.Token(), "SLACK_API_URL="+fake.APIURL(),
		"TOKKEN_AUDIT_CHANNEL="+auditChannel, "TOKKEN_OPS_CHANNEL=C0NOSUCH01"))
	for _, want := range []string{
		"warning: tokken cannot post to channel " + approverChannel + ", the approver channel of profile prod-readonly (profiles.yaml) and the approver channel of profile prod-ssm (profiles.yaml): the bot is not a member (not_in_channel): invite it there with /invite @tokken",
		"warning: tokken cannot post to channel " + stagingChannel + ", the approver channel of profile staging-admin (profiles.yaml): the channel is archived (is_archived)",
		"warning: tokken cannot post to channel C0NOSUCH01, the ops channel (TOKKEN_OPS_CHANNEL): no such channel",
		policyDir + ": ok",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("policy check output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "warning:"); n != 3 {
		t.Errorf("%d warnings, want 3 (the audit and alert channels are fine):\n%s", n, out)
	}
	if n := len(fake.Calls("conversations.info")); n == 0 {
		t.Error("no conversations.info calls")
	}
	if n := len(fake.Calls("chat.postMessage")); n != 0 {
		t.Errorf("the check posted %d messages", n)
	}

	calls := len(fake.Calls(""))
	out = run(append(base, "SLACK_API_URL="+fake.APIURL()))
	if strings.Contains(out, "warning") || len(fake.Calls("")) != calls {
		t.Errorf("without a token: %q and %d Slack calls", out, len(fake.Calls(""))-calls)
	}
}
