package cfn

import (
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tokken/tokken/bot/access"
)

// These tests guard the trust boundaries of what tokken deploys: the fences
// on its own resources, the permissions boundary its IAM writes are tied
// to, and the alarm topic's key.

// getAtt is the parsed form of `!GetAtt id.attr`.
func getAtt(id, attr string) map[string]any {
	return map[string]any{"Fn::GetAtt": []any{id, attr}}
}

var (
	ingressRole   = getAtt("IngressFunctionRole", "Arn")
	workerRole    = getAtt("WorkerFunctionRole", "Arn")
	schedulerRole = getAtt("SchedulerRole", "Arn")
	queueOperator = map[string]any{"Ref": "QueueOperatorArn"}
)

// fenceStatements returns the statements of a resource policy document.
func fenceStatements(t *testing.T, where string, doc any) []map[string]any {
	t.Helper()
	m, _ := doc.(map[string]any)
	var out []map[string]any
	for _, s := range asList(m["Statement"]) {
		sm, _ := s.(map[string]any)
		out = append(out, sm)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no policy statements", where)
	}
	return out
}

// exemptPrincipals checks that st is a Deny on every principal whose
// aws:PrincipalArn is not in the list, and returns the list. A list chosen by
// !If HasQueueOperator must be the same list with and without the operator.
func exemptPrincipals(t *testing.T, where string, st map[string]any) []any {
	t.Helper()
	if st["Effect"] != "Deny" || st["Principal"] != "*" {
		t.Errorf("%s: want Effect Deny on Principal *, got %v / %v", where, st["Effect"], st["Principal"])
	}
	cond, _ := st["Condition"].(map[string]any)
	ne, _ := cond["ArnNotEquals"].(map[string]any)
	if len(cond) != 1 || len(ne) != 1 {
		t.Fatalf("%s: want exactly one condition, ArnNotEquals aws:PrincipalArn; got %v", where, cond)
	}
	v := ne["aws:PrincipalArn"]
	vm, _ := v.(map[string]any)
	if ifs, ok := vm["Fn::If"].([]any); ok {
		if len(ifs) != 3 || ifs[0] != "HasQueueOperator" {
			t.Fatalf("%s: unexpected !If %v", where, ifs)
		}
		with, without := asList(ifs[1]), asList(ifs[2])
		if !reflect.DeepEqual(with, append(slices.Clone(without), queueOperator)) {
			t.Errorf("%s: with HasQueueOperator the list must be the same plus QueueOperatorArn: %v / %v", where, with, without)
		}
		return without
	}
	return asList(v)
}

func actionsOf(st map[string]any) []string {
	var out []string
	for _, a := range asList(st["Action"]) {
		out = append(out, fmt.Sprint(a))
	}
	return out
}

func TestTemplateFencesTokkensOwnResources(t *testing.T) {
	tpl := loadRepoTemplate(t)

	// The Slack secret: only the two functions read it.
	var secretPolicies []string
	for _, id := range tpl.OfType("AWS::SecretsManager::ResourcePolicy") {
		p := tpl.Resources[id].Properties
		if reflect.DeepEqual(p["SecretId"], map[string]any{"Ref": "SlackSecret"}) {
			secretPolicies = append(secretPolicies, id)
		}
	}
	if len(secretPolicies) != 1 {
		t.Fatalf("want one resource policy on SlackSecret, got %v", secretPolicies)
	}
	sp := tpl.Resources[secretPolicies[0]].Properties
	if sp["BlockPublicPolicy"] != true {
		t.Errorf("SlackSecret policy: BlockPublicPolicy must be true")
	}
	sts := fenceStatements(t, "SlackSecret policy", sp["ResourcePolicy"])
	readFenced := false
	for _, st := range sts {
		if slices.Contains(actionsOf(st), "secretsmanager:GetSecretValue") {
			readFenced = true
			if got := exemptPrincipals(t, "SlackSecret policy", st); !reflect.DeepEqual(got, []any{ingressRole, workerRole}) {
				t.Errorf("SlackSecret: readers = %v, want the ingress and worker roles only", got)
			}
		}
	}
	if !readFenced {
		t.Error("SlackSecret policy does not fence secretsmanager:GetSecretValue")
	}

	// The queues: who may send, who may take.
	queuePolicy := map[string]map[string]any{}
	for _, id := range tpl.OfType("AWS::SQS::QueuePolicy") {
		p := tpl.Resources[id].Properties
		for _, q := range asList(p["Queues"]) {
			ref, _ := q.(map[string]any)
			queuePolicy[fmt.Sprint(ref["Ref"])] = p
		}
	}
	for _, q := range tpl.OfType("AWS::SQS::Queue") {
		if queuePolicy[q] == nil {
			t.Errorf("queue %s has no queue policy fencing it", q)
		}
	}
	want := map[string]map[string][]any{
		"JobQueue": {
			"sqs:SendMessage":    {ingressRole, workerRole, schedulerRole},
			"sqs:ReceiveMessage": {workerRole}, "sqs:DeleteMessage": {workerRole},
			"sqs:ChangeMessageVisibility": {workerRole}, "sqs:PurgeQueue": {workerRole},
		},
		"JobDeadLetterQueue": {
			"sqs:SendMessage":    {workerRole, schedulerRole},
			"sqs:ReceiveMessage": {workerRole, schedulerRole}, "sqs:DeleteMessage": {workerRole, schedulerRole},
			"sqs:PurgeQueue": {workerRole, schedulerRole}, "sqs:StartMessageMoveTask": {workerRole, schedulerRole},
		},
	}
	for q, acts := range want {
		p := queuePolicy[q]
		if p == nil {
			continue
		}
		got := map[string][]any{}
		for _, st := range fenceStatements(t, q+" policy", p["PolicyDocument"]) {
			if res := st["Resource"]; !reflect.DeepEqual(res, getAtt(q, "Arn")) {
				t.Errorf("%s policy statement %v: Resource %v, want !GetAtt %s.Arn", q, st["Sid"], res, q)
			}
			ex := exemptPrincipals(t, q+" policy", st)
			for _, a := range actionsOf(st) {
				got[a] = ex
			}
		}
		for a, principals := range acts {
			if !reflect.DeepEqual(got[a], principals) {
				t.Errorf("%s: %s allowed to %v, want %v", q, a, got[a], principals)
			}
		}
	}

	// The table: only the two functions (and the queue operator, for the
	// dead-job runbook) read or write items.
	table := tpl.Resources["Table"].Properties
	rp, _ := table["ResourcePolicy"].(map[string]any)
	sts = fenceStatements(t, "Table ResourcePolicy", rp["PolicyDocument"])
	fenced := map[string]bool{}
	for _, st := range sts {
		if got := exemptPrincipals(t, "Table ResourcePolicy", st); !reflect.DeepEqual(got, []any{ingressRole, workerRole}) {
			t.Errorf("Table: exempt principals %v, want the ingress and worker roles only", got)
		}
		for _, a := range actionsOf(st) {
			fenced[a] = true
		}
	}
	for _, a := range []string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:PutItem", "dynamodb:UpdateItem",
		"dynamodb:DeleteItem", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:PartiQLSelect", "dynamodb:ExportTableToPointInTime"} {
		if !fenced[a] {
			t.Errorf("Table ResourcePolicy does not fence %s", a)
		}
	}
	// Management actions stay open to the deploying principal: a Deny on
	// them would lock CloudFormation out of its own table.
	for a := range fenced {
		if strings.Contains(a, "ResourcePolicy") || strings.HasSuffix(a, "Table") && a != "dynamodb:RestoreTableToPointInTime" || a == "dynamodb:*" || a == "*" {
			t.Errorf("Table ResourcePolicy denies %s: CloudFormation must still manage the table", a)
		}
	}
}

// TestTemplateSessionPoliciesDenyTokkensResources checks that the worker is
// told every resource of the stack that a grant must not touch.
func TestTemplateSessionPoliciesDenyTokkensResources(t *testing.T) {
	tpl := loadRepoTemplate(t)
	env := functionEnv(tpl, "WorkerFunction")
	join, _ := env["TOKKEN_PROTECTED_ARNS"].(map[string]any)["Fn::Join"].([]any)
	if len(join) != 2 || join[0] != "," {
		t.Fatalf("TOKKEN_PROTECTED_ARNS must be !Join [\",\", [...]], got %v", env["TOKKEN_PROTECTED_ARNS"])
	}
	var text []string
	for _, v := range asList(join[1]) {
		text = append(text, fmt.Sprint(v))
	}
	all := strings.Join(text, "\n")
	for _, must := range []string{
		fmt.Sprint(map[string]any{"Ref": "SlackSecret"}),
		fmt.Sprint(getAtt("Table", "Arn")), "${Table.Arn}/*",
		fmt.Sprint(getAtt("JobQueue", "Arn")), fmt.Sprint(getAtt("JobDeadLetterQueue", "Arn")),
		"schedule-group/${ScheduleGroup}", "schedule/${ScheduleGroup}/*",
		fmt.Sprint(ingressRole), fmt.Sprint(workerRole), fmt.Sprint(schedulerRole),
		fmt.Sprint(getAtt("IngressFunction", "Arn")),
		fmt.Sprint(map[string]any{"Ref": "AlarmTopic"}), fmt.Sprint(getAtt("AlarmTopicKey", "Arn")),
		fmt.Sprint(getAtt("IngressLogGroup", "Arn")), fmt.Sprint(getAtt("WorkerLogGroup", "Arn")),
	} {
		if !strings.Contains(all, must) {
			t.Errorf("TOKKEN_PROTECTED_ARNS lacks %s", must)
		}
	}
	if env["TOKKEN_GRANT_BOUNDARY_ARN"] == nil {
		t.Error("the worker is not told the grant boundary (TOKKEN_GRANT_BOUNDARY_ARN)")
	}
}

// TestTemplateRoleWritesAreBounded checks that the worker may write inline
// policies only on roles carrying tokken's permissions boundary, the same
// boundary it is told to require.
func TestTemplateRoleWritesAreBounded(t *testing.T) {
	tpl := loadRepoTemplate(t)
	boundary := fmt.Sprint(functionEnv(tpl, "WorkerFunction")["TOKKEN_GRANT_BOUNDARY_ARN"])
	if !strings.Contains(boundary, ":policy/${GrantBoundaryPolicyName}") {
		t.Fatalf("TOKKEN_GRANT_BOUNDARY_ARN = %s, want the GrantBoundaryPolicyName policy", boundary)
	}
	saw := map[string]bool{}
	for _, st := range allStatements(tpl) {
		if st.effect != "Allow" {
			continue
		}
		for _, a := range st.actions {
			if a != "iam:PutRolePolicy" && a != "iam:DeleteRolePolicy" && a != "iam:AttachRolePolicy" && a != "iam:PutRolePermissionsBoundary" && a != "iam:DeleteRolePermissionsBoundary" {
				continue
			}
			saw[a] = true
			eq, _ := st.condition["StringEquals"].(map[string]any)
			if fmt.Sprint(eq["iam:PermissionsBoundary"]) != boundary {
				t.Errorf("%s: %s must be conditioned on StringEquals iam:PermissionsBoundary = %s, got %v", st.where, a, boundary, st.condition)
			}
		}
	}
	if !saw["iam:PutRolePolicy"] || !saw["iam:DeleteRolePolicy"] {
		t.Errorf("the worker cannot revoke (no PutRolePolicy/DeleteRolePolicy): %v", saw)
	}
	for _, a := range []string{"iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary"} {
		if saw[a] {
			t.Errorf("the worker must not be allowed %s", a)
		}
	}
}

// TestTemplateAlarmTopicKeyLetsCloudWatchPublish: CloudWatch alarm actions
// cannot use the AWS-managed alias/aws/sns key, so the topic's key must be
// one of the template whose policy lets cloudwatch.amazonaws.com use it.
func TestTemplateAlarmTopicKeyLetsCloudWatchPublish(t *testing.T) {
	tpl := loadRepoTemplate(t)
	for _, id := range tpl.OfType("AWS::SNS::Topic") {
		k := tpl.Resources[id].Properties["KmsMasterKeyId"]
		if k == nil {
			continue
		}
		ref, _ := k.(map[string]any)
		key, ok := tpl.Resources[fmt.Sprint(ref["Ref"])]
		if !ok || key.Type != "AWS::KMS::Key" {
			t.Errorf("topic %s: KmsMasterKeyId %v is not a key of the template (alias/aws/sns cannot be used by CloudWatch)", id, k)
			continue
		}
		var cw, admin bool
		for _, st := range fenceStatements(t, "key policy", key.Properties["KeyPolicy"]) {
			p, _ := st["Principal"].(map[string]any)
			acts := actionsOf(st)
			if st["Effect"] == "Allow" && p["Service"] == "cloudwatch.amazonaws.com" &&
				slices.Contains(acts, "kms:Decrypt") && slices.Contains(acts, "kms:GenerateDataKey*") {
				cw = true
			}
			if st["Effect"] == "Allow" && strings.Contains(fmt.Sprint(p["AWS"]), ":root") {
				admin = true
			}
		}
		if !cw {
			t.Errorf("topic %s: key policy does not let cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey*", id)
		}
		if !admin {
			t.Errorf("topic %s: key policy has no account-root administration (the key would be unmanageable)", id)
		}
	}
}

// functionEnv returns the environment variables of a function (its own,
// over the template's globals).
func functionEnv(tpl *Template, fn string) map[string]any {
	env := map[string]any{}
	g, _ := tpl.Globals["Function"].(map[string]any)
	for _, src := range []map[string]any{g, tpl.Resources[fn].Properties} {
		e, _ := src["Environment"].(map[string]any)
		v, _ := e["Variables"].(map[string]any)
		maps.Copy(env, v)
	}
	return env
}

// TestTemplateHasNoDependencyCycle: resource policies that name the
// functions' roles make cycles easy (the table's policy names the roles,
// whose policies must then not name the table by !GetAtt). CloudFormation
// refuses a template with a cycle, so the other tests would pass on a
// template that cannot deploy. SAM's implicit <Function>Role depends on the
// function's Policies; <Function>Url on the function.
func TestTemplateHasNoDependencyCycle(t *testing.T) {
	tpl := loadRepoTemplate(t)
	deps := map[string]map[string]bool{}
	known := map[string]bool{}
	for id := range tpl.Resources {
		known[id] = true
	}
	for _, fn := range tpl.OfType("AWS::Serverless::Function") {
		known[fn+"Role"], known[fn+"Url"] = true, true
	}
	add := func(from string, v any) {
		if deps[from] == nil {
			deps[from] = map[string]bool{}
		}
		for _, to := range references(v) {
			if known[to] && to != from {
				deps[from][to] = true
			}
		}
	}
	g, _ := tpl.Globals["Function"].(map[string]any)
	for id, r := range tpl.Resources {
		if r.Type != "AWS::Serverless::Function" {
			add(id, r.Properties)
			continue
		}
		role := id + "Role"
		add(role, r.Properties["Policies"])
		rest := maps.Clone(r.Properties)
		delete(rest, "Policies")
		add(id, rest)
		add(id, g)
		deps[id][role] = true
		add(id+"Url", nil)
		deps[id+"Url"][id] = true
	}
	// Depth-first search for a back edge.
	state := map[string]int{} // 0 new, 1 on the path, 2 done
	var path []string
	var visit func(string) bool
	visit = func(n string) bool {
		state[n] = 1
		path = append(path, n)
		for _, m := range slices.Sorted(maps.Keys(deps[n])) {
			if state[m] == 1 {
				t.Errorf("dependency cycle: %s -> %s", strings.Join(path, " -> "), m)
				return true
			}
			if state[m] == 0 && visit(m) {
				return true
			}
		}
		path = path[:len(path)-1]
		state[n] = 2
		return false
	}
	for _, n := range slices.Sorted(maps.Keys(deps)) {
		if state[n] == 0 && visit(n) {
			return
		}
	}
	if len(deps["Table"]) == 0 {
		t.Error("the table depends on nothing: its resource policy no longer names the roles, or the scan is broken")
	}
}

var subRef = regexp.MustCompile(`\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}`)

// references lists the logical ids v refers to by Ref, GetAtt or Sub.
func references(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			switch k {
			case "Ref":
				out = append(out, fmt.Sprint(val))
			case "Fn::GetAtt":
				if l := asList(val); len(l) > 0 {
					out = append(out, fmt.Sprint(l[0]))
				}
			case "Fn::Sub":
				s := val
				if l, ok := val.([]any); ok && len(l) > 0 {
					s = l[0]
					out = append(out, references(l[1:])...)
				}
				for _, m := range subRef.FindAllStringSubmatch(fmt.Sprint(s), -1) {
					out = append(out, m[1])
				}
				continue
			}
			out = append(out, references(val)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, references(e)...)
		}
	}
	return out
}

// TestTemplateIngressCannotWriteHeldRecords: the worker's record of the
// access it must end (access.KindHeld) is out of the ingress's reach, so a
// compromised ingress cannot make tokken keep access past its window.
func TestTemplateIngressCannotWriteHeldRecords(t *testing.T) {
	tpl := loadRepoTemplate(t)
	var denied []string
	for _, st := range policyStatements("IngressFunction", tpl.Resources["IngressFunction"]) {
		fa, _ := st.condition["ForAnyValue:StringEquals"].(map[string]any)
		if st.effect != "Deny" || len(st.condition) != 1 || !slices.Contains(asList(fa["dynamodb:LeadingKeys"]), any(access.KindHeld)) {
			continue
		}
		if !reflect.DeepEqual(st.resources, []any{map[string]any{"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${TableName}"}}) {
			t.Errorf("%s: Resource %v, want the table", st.where, st.resources)
		}
		denied = append(denied, st.actions...)
	}
	for _, a := range []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} {
		if !slices.Contains(denied, a) {
			t.Errorf("the ingress is not denied %s on partition %s", a, access.KindHeld)
		}
	}
}
