package cfn

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// evalList evaluates the intrinsics a release policy Resource may use (Ref
// to a list parameter, Fn::Join, Fn::Sub with a variable map, Fn::Split)
// with params as the parameter values.
func evalList(t *testing.T, v any, params map[string][]string) []string {
	t.Helper()
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, evalList(t, e, params)...)
		}
		return out
	case map[string]any:
		if ref, ok := x["Ref"].(string); ok {
			if p, ok := params[ref]; ok {
				return p
			}
			t.Fatalf("Ref to %s, not a list parameter", ref)
		}
		if args, ok := x["Fn::Join"].([]any); ok {
			return []string{strings.Join(evalList(t, args[1], params), args[0].(string))}
		}
		if args, ok := x["Fn::Split"].([]any); ok {
			return strings.Split(evalList(t, args[1], params)[0], args[0].(string))
		}
		if args, ok := x["Fn::Sub"].([]any); ok {
			s := args[0].(string)
			for k, vv := range args[1].(map[string]any) {
				s = strings.ReplaceAll(s, "${"+k+"}", evalList(t, vv, params)[0])
			}
			return []string{s}
		}
	}
	t.Fatalf("cannot evaluate %v", v)
	return nil
}

// TestTemplateReleaseApprovalsLeastPrivilege: the worker may read and
// decide approvals of the pipelines listed in ReleasePipelineArns and
// nothing else, PutApprovalResult on their actions only; the policy is
// absent without pipelines; the topic the stack creates reaches the worker.
func TestTemplateReleaseApprovalsLeastPrivilege(t *testing.T) {
	tpl := loadRepoTemplate(t)
	r, ok := tpl.Resources["ReleaseApprovalsPolicy"]
	if !ok || r.Type != "AWS::IAM::Policy" {
		t.Fatal("no ReleaseApprovalsPolicy")
	}
	raw := tpl.Raw["Resources"].(map[string]any)["ReleaseApprovalsPolicy"].(map[string]any)
	if raw["Condition"] != "HasReleasePipelines" {
		t.Errorf("ReleaseApprovalsPolicy applies without pipelines (Condition %v)", raw["Condition"])
	}
	if roles := asList(r.Properties["Roles"]); len(roles) != 1 || !reflect.DeepEqual(roles[0], map[string]any{"Ref": "WorkerFunctionRole"}) {
		t.Errorf("ReleaseApprovalsPolicy roles = %v, want the worker's only", roles)
	}
	arns := []string{"arn:aws:codepipeline:us-east-1:123456789012:web-prod", "arn:aws:codepipeline:us-east-1:123456789012:api-prod"}
	params := map[string][]string{"ReleasePipelineArns": arns}
	got := map[string][]string{}
	for _, st := range statementsOf("ReleaseApprovalsPolicy", r.Properties["PolicyDocument"]) {
		if st.effect != "Allow" {
			continue
		}
		res := evalList(t, st.resources, params)
		for _, a := range st.actions {
			got[a] = append(got[a], res...)
		}
	}
	want := map[string][]string{
		"codepipeline:GetPipelineState":       arns,
		"codepipeline:GetPipelineExecution":   arns,
		"codepipeline:StartPipelineExecution": arns,
		"codepipeline:PutApprovalResult":      {arns[0] + "/*", arns[1] + "/*"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("release permissions = %v\nwant %v", got, want)
	}
	// No other statement in the template touches CodePipeline.
	for _, st := range allStatements(tpl) {
		for _, a := range st.actions {
			if strings.HasPrefix(a, "codepipeline:") && !strings.HasPrefix(st.where, "ReleaseApprovalsPolicy ") {
				t.Errorf("%s: %s outside ReleaseApprovalsPolicy", st.where, a)
			}
		}
	}

	if tpl.Resources["ReleaseApprovalTopic"].Type != "AWS::SNS::Topic" {
		t.Fatal("no ReleaseApprovalTopic")
	}
	var subscribed []string
	for _, id := range tpl.OfType("AWS::SNS::Subscription") {
		p := tpl.Resources[id].Properties
		if p["Protocol"] == "lambda" && reflect.DeepEqual(p["Endpoint"], map[string]any{"Fn::GetAtt": []any{"WorkerFunction", "Arn"}}) {
			subscribed = append(subscribed, fmt.Sprint(p["TopicArn"]))
		}
	}
	if !slices.Contains(subscribed, fmt.Sprint(map[string]any{"Ref": "ReleaseApprovalTopic"})) {
		t.Errorf("the worker is not subscribed to ReleaseApprovalTopic (subscriptions: %v)", subscribed)
	}
	for _, id := range tpl.OfType("AWS::Lambda::Permission") {
		p := tpl.Resources[id].Properties
		if reflect.DeepEqual(p["SourceArn"], map[string]any{"Ref": "ReleaseApprovalTopic"}) &&
			p["Principal"] == "sns.amazonaws.com" && reflect.DeepEqual(p["FunctionName"], map[string]any{"Ref": "WorkerFunction"}) {
			return
		}
	}
	t.Error("SNS may not invoke the worker for ReleaseApprovalTopic")
}
