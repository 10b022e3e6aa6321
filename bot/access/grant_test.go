package access

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
)

func TestSessionSeconds(t *testing.T) {
	tests := []struct {
		remaining time.Duration
		want      int32
	}{
		{-time.Minute, 900},
		{0, 900},
		{10 * time.Minute, 900},
		{15 * time.Minute, 900},
		{15*time.Minute + 500*time.Millisecond, 901},
		{30 * time.Minute, 1800},
		{time.Hour, 3600},
		{4 * time.Hour, 3600},
	}
	for _, tt := range tests {
		if got := SessionSeconds(tt.remaining); got != tt.want {
			t.Errorf("SessionSeconds(%s) = %d, want %d", tt.remaining, got, tt.want)
		}
	}
}

type policyForTest struct {
	Version   string
	Statement []struct {
		Sid       string
		Effect    string
		Action    any
		Resource  any
		Condition map[string]map[string]string
	}
}

func parsePolicy(t *testing.T, s string) policyForTest {
	t.Helper()
	var p policyForTest
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		t.Fatalf("policy is not JSON: %v\n%s", err, s)
	}
	return p
}

func TestSessionPolicy(t *testing.T) {
	end := time.Date(2026, 3, 1, 10, 10, 0, 0, time.FixedZone("JST", 9*3600))
	sts := Profile{Name: "admin", Kind: KindSTS}
	ssm := Profile{Name: "prod-ssm", Kind: KindSSM}
	web := []bot.Target{{ID: "i-0abc123def4567890"}, {ID: "i-12345678"}}

	t.Run("sts allows the role and denies after the window", func(t *testing.T) {
		s, err := SessionPolicy(GrantSpec{Profile: sts, WindowEnd: end}, "")
		if err != nil {
			t.Fatal(err)
		}
		p := parsePolicy(t, s)
		if len(p.Statement) != 2 || p.Statement[0].Effect != "Allow" || p.Statement[0].Action != "*" {
			t.Fatalf("statements %+v", p.Statement)
		}
		last := p.Statement[1]
		if last.Effect != "Deny" || last.Action != "*" || last.Condition["DateGreaterThan"]["aws:CurrentTime"] != "2026-03-01T01:10:00Z" {
			t.Fatalf("window statement %+v (must be UTC)", last)
		}
	})
	t.Run("ssm allows only the instances, documents and own sessions", func(t *testing.T) {
		s, err := SessionPolicy(GrantSpec{RequestID: "r-7k3q9x0m2c4d", Profile: ssm, Targets: web, WindowEnd: end}, "aws-cn")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			`"arn:aws-cn:ec2:*:*:instance/i-0abc123def4567890"`, `"arn:aws-cn:ec2:*:*:instance/i-12345678"`,
			`document/AWS-StartPortForwardingSession*"`, `document/SSM-SessionManagerRunShell"`,
			`"arn:aws-cn:ssm:*:*:session/r-7k3q9x0m2c4d-*"`, `"ssm:TerminateSession"`, `"ssm:ResumeSession"`,
			`{"Sid":"Fence","Effect":"Deny","NotAction":["ssm:*","ec2:DescribeInstances"],"Resource":"*"}`,
		} {
			if !strings.Contains(s, want) {
				t.Errorf("policy lacks %s:\n%s", want, s)
			}
		}
		p := parsePolicy(t, s)
		for _, st := range p.Statement {
			if st.Effect == "Allow" && st.Action == "*" {
				t.Fatalf("ssm policy allows everything: %s", s)
			}
		}
		if last := p.Statement[len(p.Statement)-1]; last.Effect != "Deny" || last.Condition["DateGreaterThan"] == nil {
			t.Fatalf("no window deny: %s", s)
		}
	})
	t.Run("profile policy narrows sts", func(t *testing.T) {
		prof := sts
		prof.SessionPolicy = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}`
		s, err := SessionPolicy(GrantSpec{Profile: prof, WindowEnd: end}, "")
		if err != nil {
			t.Fatal(err)
		}
		p := parsePolicy(t, s)
		if len(p.Statement) != 2 || p.Statement[0].Action != "s3:GetObject" {
			t.Fatalf("statements %+v", p.Statement)
		}
	})
	errCases := []struct {
		name string
		spec GrantSpec
		want string
	}{
		{"no window", GrantSpec{Profile: sts}, "no window end"},
		{"ssm without targets", GrantSpec{Profile: ssm, WindowEnd: end}, "without instances"},
		{"bad instance", GrantSpec{RequestID: "r-1", Profile: ssm, Targets: []bot.Target{{ID: `i-1"}`}}, WindowEnd: end}, "bad instance id"},
		{"ssm profile allow", GrantSpec{RequestID: "r-1", Profile: Profile{Name: "p", Kind: KindSSM,
			SessionPolicy: `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`}, Targets: web, WindowEnd: end}, "only Deny"},
		{"ssm without request id", GrantSpec{Profile: ssm, Targets: web, WindowEnd: end}, "cannot name sessions"},
		{"ssm request id with a wildcard", GrantSpec{RequestID: "r-*", Profile: ssm, Targets: web, WindowEnd: end}, "cannot name sessions"},
		{"protected resource not an ARN", GrantSpec{Profile: sts, WindowEnd: end, Protected: []string{"tokken"}}, "not an ARN"},
		{"profile policy too large next to the fence", GrantSpec{Profile: Profile{Name: "big", Kind: KindSTS,
			SessionPolicy: `{"Statement":[{"Sid":"` + strings.Repeat("x", 1800) + `","Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`},
			WindowEnd: end, Protected: []string{"arn:aws:sqs:us-east-1:123456789012:" + strings.Repeat("q", 80)}}, "shorten the profile's session_policy"},
		{"bad profile policy", GrantSpec{Profile: Profile{Name: "p", Kind: KindSTS, SessionPolicy: `{`}, WindowEnd: end}, "session policy of profile p"},
		{"unknown kind", GrantSpec{Profile: Profile{Kind: "rdp"}, WindowEnd: end}, "unknown profile kind"},
		{"too large", GrantSpec{RequestID: "r-1", Profile: ssm, Targets: manyTargets(40), WindowEnd: end}, "over STS's 2048"},
	}
	for _, tt := range errCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SessionPolicy(tt.spec, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// MaxInstances must always fit, in every partition.
	for _, partition := range []string{"", "aws-cn", "aws-us-gov"} {
		if _, err := SessionPolicy(GrantSpec{RequestID: "r-7k3q9x0m2c4d", Profile: ssm, Targets: manyTargets(MaxInstances), WindowEnd: end}, partition); err != nil {
			t.Fatalf("%d instances do not fit in partition %q: %v", MaxInstances, partition, err)
		}
	}
}

// TestSessionPolicyFence: every grant's policy fences tokken's own
// resources: an sts grant denies every action on them by ARN, just before
// the window end; an ssm grant denies everything but Session Manager (its
// fence needs no ARN list).
func TestSessionPolicyFence(t *testing.T) {
	end := time.Date(2026, 3, 1, 10, 10, 0, 0, time.UTC)
	protected := []string{
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:SlackSecret-AbCdEfGhIjKl-AbCdEf",
		"arn:aws:dynamodb:us-east-1:123456789012:table/tokken", "arn:aws:dynamodb:us-east-1:123456789012:table/tokken/*",
		"arn:aws:lambda:us-east-1:123456789012:function:tokken-WorkerFunction-AbCdEfGhIjKl",
	}
	narrowed := Profile{Name: "s3", Kind: KindSTS, SessionPolicy: `{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}`}
	for _, prof := range []Profile{{Name: "admin", Kind: KindSTS}, narrowed} {
		s, err := SessionPolicy(GrantSpec{RequestID: "r-7k3q9x0m2c4d", Profile: prof, WindowEnd: end, Protected: protected}, "aws")
		if err != nil {
			t.Fatal(err)
		}
		p := parsePolicy(t, s)
		n := len(p.Statement)
		fence := p.Statement[n-2]
		if fence.Sid != "TokkenItself" || fence.Effect != "Deny" || fence.Action != "*" || fence.Condition != nil ||
			fmt.Sprint(fence.Resource) != fmt.Sprint(protected) {
			t.Errorf("%s: fence %+v, want Deny * on %v", prof.Name, fence, protected)
		}
		if p.Statement[n-1].Sid != "WindowEnd" {
			t.Errorf("%s: the window end is no longer the last statement: %s", prof.Name, s)
		}
	}
	// Without protected resources (tokken serve, tests), sts has no fence.
	s, err := SessionPolicy(GrantSpec{Profile: Profile{Name: "admin", Kind: KindSTS}, WindowEnd: end}, "aws")
	if err != nil || strings.Contains(s, "TokkenItself") {
		t.Errorf("fence without protected resources: %v %s", err, s)
	}
	// NewGrantSpec passes them through.
	r := &Request{ID: "r-7k3q9x0m2c4d", Requester: "U1", Profile: "admin", Kind: KindSTS, RoleARN: "arn:aws:iam::123456789012:role/admin"}
	spec, err := NewGrantSpec(r, end, end.Add(-time.Hour), "aws", protected...)
	if err != nil || !strings.Contains(spec.SessionPolicy, protected[3]) {
		t.Errorf("NewGrantSpec: %v %s", err, spec.SessionPolicy)
	}
}

func manyTargets(n int) []bot.Target {
	out := make([]bot.Target, n)
	for i := range out {
		out[i] = bot.Target{ID: fmt.Sprintf("i-%017x", i)}
	}
	return out
}

func TestCredentialsRedacted(t *testing.T) {
	c := Credentials{AccessKeyID: "ASIAXXX", SecretAccessKey: "s3cr3t", SessionToken: "tok3n"}
	var b strings.Builder
	l := slog.New(slog.NewJSONHandler(&b, nil))
	l.Info("oops", "creds", c)
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), b.String()} {
		if strings.Contains(out, "s3cr3t") || strings.Contains(out, "tok3n") {
			t.Fatalf("credentials leaked: %s", out)
		}
	}
	if _, err := json.Marshal(c); err == nil {
		t.Fatal("credentials serialized")
	}
	if _, err := json.Marshal(struct{ C Credentials }{c}); err == nil {
		t.Fatal("nested credentials serialized")
	}
}
