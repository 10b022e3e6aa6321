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

// evalCondition evaluates the condition name of the template with params
// as the list parameters' values (Fn::Not, Fn::Equals, Fn::Join, Ref).
func evalCondition(t *testing.T, tpl *Template, name string, params map[string][]string) bool {
	t.Helper()
	conds, _ := tpl.Raw["Conditions"].(map[string]any)
	c, ok := conds[name].(map[string]any)
	if !ok {
		t.Fatalf("no condition %s", name)
	}
	var eval func(v any) bool
	eval = func(v any) bool {
		m := v.(map[string]any)
		if args, ok := m["Fn::Not"].([]any); ok {
			return !eval(args[0])
		}
		if args, ok := m["Fn::Equals"].([]any); ok {
			return reflect.DeepEqual(evalList(t, args[0], params), evalList(t, args[1], params))
		}
		t.Fatalf("condition %s: cannot evaluate %v", name, v)
		return false
	}
	return eval(c)
}

// TestTemplateReleaseTopicsEachReachTheWorker: every topic of
// ReleaseTopicArns gets its own subscription of the worker and its own
// invoke permission whose SourceArn is that topic (never a wildcard, never
// another topic); with the parameter empty (CloudFormation's [""]), the
// condition leaves out the one empty copy the loops make.
func TestTemplateReleaseTopicsEachReachTheWorker(t *testing.T) {
	tpl := loadRepoTemplate(t)
	if got := tpl.Raw["Transform"]; !reflect.DeepEqual(got, []any{"AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"}) {
		t.Errorf("Transform = %v: Fn::ForEach needs AWS::LanguageExtensions, listed before the SAM transform", got)
	}
	if p, _ := tpl.Raw["Parameters"].(map[string]any)["ReleaseTopicArns"].(map[string]any); p["Type"] != "CommaDelimitedList" {
		t.Fatalf("ReleaseTopicArns is %v, want a CommaDelimitedList parameter", p)
	}
	expand := func(topics ...string) map[string]Resource {
		t.Helper()
		all := map[string]Resource{}
		for name, l := range tpl.Loops {
			res, err := l.Expand(map[string][]string{"ReleaseTopicArns": topics})
			if err != nil {
				t.Fatalf("loop %s: %v", name, err)
			}
			for id, r := range res {
				if _, dup := tpl.Resources[id]; dup {
					t.Errorf("loop %s makes %s, which the template already defines", name, id)
				}
				all[id] = r
			}
		}
		return all
	}

	topics := []string{"arn:aws:sns:us-east-1:123456789012:deploys", "arn:aws:sns:us-east-1:123456789012:team-b-approvals"}
	subscribed, invokable := map[string]int{}, map[string]int{}
	for id, r := range expand(topics...) {
		if r.Condition != "HasReleaseTopics" {
			t.Errorf("%s is made without the HasReleaseTopics condition (%v)", id, r.Condition)
		}
		p := r.Properties
		switch r.Type {
		case "AWS::SNS::Subscription":
			if p["Protocol"] != "lambda" || !reflect.DeepEqual(p["Endpoint"], map[string]any{"Fn::GetAtt": []any{"WorkerFunction", "Arn"}}) {
				t.Errorf("%s does not subscribe the worker: %v", id, p)
			}
			subscribed[fmt.Sprint(p["TopicArn"])]++
		case "AWS::Lambda::Permission":
			if p["Principal"] != "sns.amazonaws.com" || p["Action"] != "lambda:InvokeFunction" ||
				!reflect.DeepEqual(p["FunctionName"], map[string]any{"Ref": "WorkerFunction"}) {
				t.Errorf("%s is not SNS's permission to invoke the worker: %v", id, p)
			}
			invokable[fmt.Sprint(p["SourceArn"])]++
		default:
			t.Errorf("the release topic loops make %s of type %s", id, r.Type)
		}
	}
	want := map[string]int{topics[0]: 1, topics[1]: 1}
	if !reflect.DeepEqual(subscribed, want) || !reflect.DeepEqual(invokable, want) {
		t.Errorf("subscriptions %v and invoke permissions %v, want one of each per topic %v", subscribed, invokable, topics)
	}
	if !evalCondition(t, tpl, "HasReleaseTopics", map[string][]string{"ReleaseTopicArns": topics}) {
		t.Error("HasReleaseTopics is false with topics")
	}

	// The parameter's default: one copy of each for "", left out.
	empty := expand("")
	if len(empty) != 2 {
		t.Errorf("the empty parameter makes %d resources, want the 2 empty copies: %v", len(empty), empty)
	}
	if evalCondition(t, tpl, "HasReleaseTopics", map[string][]string{"ReleaseTopicArns": {""}}) {
		t.Error("HasReleaseTopics is true for the empty parameter: a subscription to topic \"\" would fail the deploy")
	}
}
