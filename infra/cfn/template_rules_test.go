package cfn

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
)

// These tests guard what tokken deploys (../../template.yaml) so that a
// future change cannot silently widen permissions or drop a safety net.

func loadRepoTemplate(t *testing.T) *Template {
	t.Helper()
	tpl, err := Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// statement is one IAM policy statement, with where it was found.
type statement struct {
	where     string
	effect    string
	actions   []string
	resources []any
	condition map[string]any
}

func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	default:
		return []any{x}
	}
}

func statementsOf(where string, doc any) []statement {
	m, _ := doc.(map[string]any)
	var out []statement
	for i, s := range asList(m["Statement"]) {
		sm, _ := s.(map[string]any)
		st := statement{where: fmt.Sprintf("%s statement %d (%v)", where, i, sm["Sid"])}
		st.effect, _ = sm["Effect"].(string)
		for _, a := range asList(sm["Action"]) {
			as, _ := a.(string)
			st.actions = append(st.actions, as)
		}
		st.resources = asList(sm["Resource"])
		st.condition, _ = sm["Condition"].(map[string]any)
		out = append(out, st)
	}
	return out
}

// policyStatements returns the statements of a function's inline policies
// or a role's policies.
func policyStatements(id string, r Resource) []statement {
	var out []statement
	for _, p := range asList(r.Properties["Policies"]) {
		pm, _ := p.(map[string]any)
		if doc, ok := pm["PolicyDocument"]; ok { // AWS::IAM::Role
			out = append(out, statementsOf(id, doc)...)
			continue
		}
		out = append(out, statementsOf(id, pm)...) // SAM inline policy document
	}
	return out
}

func allStatements(tpl *Template) []statement {
	var out []statement
	for id, r := range tpl.Resources {
		out = append(out, policyStatements(id, r)...)
	}
	return out
}

func TestTemplateFunctionsAreArm64WithRetainedLogs(t *testing.T) {
	tpl := loadRepoTemplate(t)
	g, _ := tpl.Globals["Function"].(map[string]any)
	fns := tpl.OfType("AWS::Serverless::Function")
	if len(fns) < 2 {
		t.Fatalf("want ingress and worker functions, found %v", fns)
	}
	for _, id := range fns {
		p := tpl.Resources[id].Properties
		arch, rt := p["Architectures"], p["Runtime"]
		if arch == nil {
			arch = g["Architectures"]
		}
		if rt == nil {
			rt = g["Runtime"]
		}
		if !reflect.DeepEqual(arch, []any{"arm64"}) {
			t.Errorf("%s: Architectures = %v, want [arm64]", id, arch)
		}
		if rt != "provided.al2023" {
			t.Errorf("%s: Runtime = %v, want provided.al2023", id, rt)
		}
		lc, _ := p["LoggingConfig"].(map[string]any)
		ref, _ := lc["LogGroup"].(map[string]any)
		lg, ok := tpl.Resources[fmt.Sprint(ref["Ref"])]
		if !ok || lg.Type != "AWS::Logs::LogGroup" {
			t.Errorf("%s: LoggingConfig.LogGroup must !Ref a log group of the template, got %v", id, lc["LogGroup"])
			continue
		}
		if lg.Properties["RetentionInDays"] == nil {
			t.Errorf("%s: its log group has no RetentionInDays", id)
		}
	}
}

func TestTemplateIngressCannotTouchAWSResources(t *testing.T) {
	tpl := loadRepoTemplate(t)
	r, ok := tpl.Resources["IngressFunction"]
	if !ok {
		t.Fatal("no IngressFunction")
	}
	sts := policyStatements("IngressFunction", r)
	if len(sts) == 0 {
		t.Fatal("IngressFunction has no inline policy statements to check")
	}
	for _, st := range sts {
		for _, a := range st.actions {
			svc, _, _ := strings.Cut(a, ":")
			if a == "*" || strings.HasSuffix(a, ":*") {
				t.Errorf("%s: wildcard action %q", st.where, a)
			}
			switch strings.ToLower(svc) {
			case "sts", "ec2", "ssm", "iam", "scheduler":
				t.Errorf("%s: ingress must not be allowed %q", st.where, a)
			}
		}
		for _, res := range st.resources {
			if res == "*" {
				t.Errorf("%s: ingress statement on Resource *", st.where)
			}
		}
	}
}

func TestTemplateNoWildcardsAndGuardedSensitiveActions(t *testing.T) {
	tpl := loadRepoTemplate(t)
	// Actions AWS does not support resource-level permissions for.
	starOK := map[string]bool{"ssm:DescribeSessions": true, "ec2:DescribeInstances": true, "ec2:DescribeTags": true, "ecs:ListServices": true}
	sawAssume := false
	for _, st := range allStatements(tpl) {
		if st.effect != "Allow" {
			continue
		}
		for _, a := range st.actions {
			if a == "*" || strings.HasSuffix(a, ":*") {
				t.Errorf("%s: wildcard action %q", st.where, a)
			}
		}
		for _, res := range st.resources {
			if res != "*" {
				continue
			}
			for _, a := range st.actions {
				if !starOK[a] {
					t.Errorf("%s: %q on Resource * (only %v may be)", st.where, a, starOK)
				}
			}
		}
		for _, a := range st.actions {
			switch a {
			case "sts:AssumeRole":
				sawAssume = true
				eq, _ := st.condition["StringEquals"].(map[string]any)
				if eq["iam:ResourceTag/tokken:grantable"] != "true" {
					t.Errorf("%s: sts:AssumeRole must be conditioned on iam:ResourceTag/tokken:grantable = true, got %v", st.where, st.condition)
				}
			case "iam:PutRolePolicy", "iam:DeleteRolePolicy":
				eq, _ := st.condition["StringEquals"].(map[string]any)
				if eq["iam:ResourceTag/tokken:grantable"] != "true" {
					t.Errorf("%s: %s must be conditioned on iam:ResourceTag/tokken:grantable = true", st.where, a)
				}
			case "ec2:CreateTags":
				fa, _ := st.condition["ForAllValues:StringEquals"].(map[string]any)
				if fa["aws:TagKeys"] == nil {
					t.Errorf("%s: ec2:CreateTags must be limited with ForAllValues:StringEquals aws:TagKeys", st.where)
				}
			case "iam:PassRole":
				eq, _ := st.condition["StringEquals"].(map[string]any)
				if eq["iam:PassedToService"] == nil {
					t.Errorf("%s: iam:PassRole must name iam:PassedToService", st.where)
				}
			}
		}
	}
	if !sawAssume {
		t.Error("no statement allows sts:AssumeRole: the worker cannot grant anything")
	}
}

func TestTemplateEveryQueueHasADeadLetterQueue(t *testing.T) {
	tpl := loadRepoTemplate(t)
	dlqs := map[string]bool{}
	for _, id := range tpl.OfType("AWS::SQS::Queue") {
		rp, _ := tpl.Resources[id].Properties["RedrivePolicy"].(map[string]any)
		if ga, ok := rp["deadLetterTargetArn"].(map[string]any); ok {
			if parts, ok := ga["Fn::GetAtt"].([]any); ok && len(parts) == 2 {
				dlqs[fmt.Sprint(parts[0])] = true
			}
		}
	}
	for _, id := range tpl.OfType("AWS::SQS::Queue") {
		if dlqs[id] {
			continue
		}
		rp, _ := tpl.Resources[id].Properties["RedrivePolicy"].(map[string]any)
		if rp["deadLetterTargetArn"] == nil {
			t.Errorf("queue %s has no dead-letter queue (and is not one)", id)
		}
	}
	if len(dlqs) == 0 {
		t.Error("no dead-letter queue at all")
	}
}

func TestTemplateAlarmsReachTokken(t *testing.T) {
	tpl := loadRepoTemplate(t)
	alarms := tpl.OfType("AWS::CloudWatch::Alarm")
	if len(alarms) == 0 {
		t.Fatal("no CloudWatch alarms on tokken itself")
	}
	want := map[string]any{"Ref": "AlarmTopic"}
	for _, id := range alarms {
		actions := asList(tpl.Resources[id].Properties["AlarmActions"])
		if len(actions) != 1 || !reflect.DeepEqual(actions[0], want) {
			t.Errorf("alarm %s: AlarmActions = %v, want [!Ref AlarmTopic] (the topic tokken subscribes to)", id, actions)
		}
	}
	for _, fn := range tpl.OfType("AWS::Serverless::Function") {
		found := false
		for _, id := range alarms {
			dims := asList(tpl.Resources[id].Properties["Dimensions"])
			for _, d := range dims {
				dm, _ := d.(map[string]any)
				if reflect.DeepEqual(dm["Value"], map[string]any{"Ref": fn}) {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("function %s has no error alarm", fn)
		}
	}
}

// TestTemplateSweepScheduleMatchesSweepInterval: the Lambda sweep runs at
// the rate `tokken serve` uses and messages quote (bot.SweepInterval), and
// sends the job kind the worker handles.
func TestTemplateSweepScheduleMatchesSweepInterval(t *testing.T) {
	tpl := loadRepoTemplate(t)
	r, ok := tpl.Resources["SweepSchedule"]
	if !ok || r.Type != "AWS::Scheduler::Schedule" {
		t.Fatalf("SweepSchedule = %+v, want an AWS::Scheduler::Schedule", r)
	}
	minutes := int(bot.SweepInterval / time.Minute)
	want := fmt.Sprintf("rate(%d minutes)", minutes)
	if minutes == 1 {
		want = "rate(1 minute)"
	}
	if got := r.Properties["ScheduleExpression"]; got != want {
		t.Errorf("SweepSchedule ScheduleExpression = %v, want %s (bot.SweepInterval)", got, want)
	}
	target, _ := r.Properties["Target"].(map[string]any)
	if input, _ := target["Input"].(string); !strings.Contains(input, `"kind":"sweep"`) {
		t.Errorf("SweepSchedule input %q does not send the sweep job", input)
	}
}
