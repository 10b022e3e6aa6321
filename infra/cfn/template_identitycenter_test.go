package cfn

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tokken/tokken/infra/identitycenter"
	"github.com/tokken/tokken/testkit/awsfake"
)

// Parameter values the Identity Center checks deploy with.
var idcParams = map[string][]string{
	"AWS::Partition":                  {"aws"},
	"IdentityCenterInstanceArn":       {"arn:aws:sso:::instance/ssoins-1111111111111111"},
	"IdentityCenterIdentityStoreId":   {"d-1111111111"},
	"IdentityCenterPermissionSetArns": {"arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-aaaaaaaaaaaaaaaa", "arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-bbbbbbbbbbbbbbbb"},
	"IdentityCenterGroupArns":         {"arn:aws:identitystore:::group/1111111111-aaaaaaaa-0000-0000-0000-000000000001"},
}

var subVar = regexp.MustCompile(`\$\{([^}]+)\}`)

// render evaluates the intrinsics an Identity Center policy Resource uses
// (Ref to a parameter or pseudo parameter, Fn::Sub with or without a
// variable map, Fn::Join, Fn::Split, Fn::Select) to a list of strings.
func render(t *testing.T, v any, vars map[string][]string) []string {
	t.Helper()
	one := func(v any) string {
		out := render(t, v, vars)
		if len(out) != 1 {
			t.Fatalf("%v is %d values, want one", v, len(out))
		}
		return out[0]
	}
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, render(t, e, vars)...)
		}
		return out
	case map[string]any:
		if ref, ok := x["Ref"].(string); ok {
			if p, ok := vars[ref]; ok {
				return p
			}
			t.Fatalf("Ref to %s, which has no value here", ref)
		}
		if args, ok := x["Fn::Join"].([]any); ok {
			return []string{strings.Join(render(t, args[1], vars), args[0].(string))}
		}
		if args, ok := x["Fn::Split"].([]any); ok {
			return strings.Split(one(args[1]), args[0].(string))
		}
		if args, ok := x["Fn::Select"].([]any); ok {
			i := int(args[0].(int))
			return []string{render(t, args[1], vars)[i]}
		}
		if sub, ok := x["Fn::Sub"]; ok {
			s, local := "", map[string][]string{}
			switch a := sub.(type) {
			case string:
				s = a
			case []any:
				s = a[0].(string)
				for k, vv := range a[1].(map[string]any) {
					local[k] = []string{one(vv)}
				}
			}
			return []string{subVar.ReplaceAllStringFunc(s, func(m string) string {
				name := m[2 : len(m)-1]
				if v, ok := local[name]; ok {
					return v[0]
				}
				if v, ok := vars[name]; ok && len(v) == 1 {
					return v[0]
				}
				t.Fatalf("Fn::Sub %q: no single value for %s", s, name)
				return ""
			})}
		}
	}
	t.Fatalf("cannot evaluate %v", v)
	return nil
}

// TestTemplateIdentityCenterLeastPrivilege: with Identity Center configured
// the worker, and only the worker, may make exactly the calls
// infra/identitycenter makes, on the configured instance and identity store,
// writing only the listed permission sets and groups; each policy is absent
// when its parameters are empty.
func TestTemplateIdentityCenterLeastPrivilege(t *testing.T) {
	tpl := loadRepoTemplate(t)
	resources := tpl.Raw["Resources"].(map[string]any)
	policies := map[string]string{ // policy → condition
		"IdentityCenterReadPolicy":        "HasIdentityCenter",
		"IdentityCenterAssignmentsPolicy": "HasIdentityCenterPermissionSets",
		"IdentityCenterMembershipsPolicy": "HasIdentityCenterGroups",
	}
	got := map[string][]string{} // action → resources
	var docs []string
	for id, cond := range policies {
		r, ok := tpl.Resources[id]
		if !ok || r.Type != "AWS::IAM::Policy" {
			t.Fatalf("no AWS::IAM::Policy %s", id)
		}
		if c := resources[id].(map[string]any)["Condition"]; c != cond {
			t.Errorf("%s has Condition %v, want %s", id, c, cond)
		}
		if roles := asList(r.Properties["Roles"]); len(roles) != 1 || !reflect.DeepEqual(roles[0], map[string]any{"Ref": "WorkerFunctionRole"}) {
			t.Errorf("%s roles = %v, want the worker's only", id, roles)
		}
		var rendered []map[string]any
		for _, st := range statementsOf(id, r.Properties["PolicyDocument"]) {
			if st.effect != "Allow" || st.condition != nil {
				t.Errorf("%s: want plain Allow statements", st.where)
			}
			res := render(t, st.resources, idcParams)
			slices.Sort(res)
			for _, a := range st.actions {
				got[a] = append(got[a], res...)
			}
			rendered = append(rendered, map[string]any{"Effect": "Allow", "Action": st.actions, "Resource": res})
		}
		b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": rendered})
		docs = append(docs, string(b))
	}

	const (
		instance = "arn:aws:sso:::instance/ssoins-1111111111111111"
		psAll    = "arn:aws:sso:::permissionSet/ssoins-1111111111111111/*"
		accounts = "arn:aws:sso:::account/*"
		store    = "arn:aws:identitystore::*:identitystore/d-1111111111"
		users    = "arn:aws:identitystore:::user/*"
		groups   = "arn:aws:identitystore:::group/*"
		members  = "arn:aws:identitystore:::membership/*"
	)
	ps, group := idcParams["IdentityCenterPermissionSetArns"], idcParams["IdentityCenterGroupArns"][0]
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	want := map[string][]string{
		"sso:ListPermissionSets":                      sorted(instance, psAll),
		"sso:DescribePermissionSet":                   sorted(instance, psAll),
		"sso:ListAccountAssignments":                  sorted(instance, psAll, accounts),
		"sso:DescribeAccountAssignmentCreationStatus": {instance},
		"sso:DescribeAccountAssignmentDeletionStatus": {instance},
		"sso:CreateAccountAssignment":                 sorted(instance, ps[0], ps[1], accounts),
		"sso:DeleteAccountAssignment":                 sorted(instance, ps[0], ps[1], accounts),
		"identitystore:GetUserId":                     sorted(store, users),
		"identitystore:GetGroupId":                    sorted(store, groups),
		"identitystore:GetGroupMembershipId":          sorted(store, group, users, members),
		"identitystore:CreateGroupMembership":         sorted(store, group, users, members),
		"identitystore:DeleteGroupMembership":         sorted(store, group, users, members),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Identity Center permissions = %v\nwant %v", got, want)
	}
	// Exactly what the client calls.
	var granted []string
	for a := range got {
		granted = append(granted, a)
	}
	needed := identitycenter.IAMActions()
	slices.Sort(granted)
	slices.Sort(needed)
	if !slices.Equal(granted, needed) {
		t.Errorf("granted %v\nthe client needs %v", granted, needed)
	}

	// The rendered policies, evaluated: the listed permission sets and group
	// only, in the configured instance and identity store only.
	allowed := func(action, resource string) bool {
		for _, d := range docs {
			dec, err := awsfake.EvaluatePolicy(d, awsfake.PolicyRequest{Action: action, Resource: resource})
			if err != nil {
				t.Fatal(err)
			}
			if dec == awsfake.Allowed {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		action, resource string
		want             bool
	}{
		{"sso:CreateAccountAssignment", ps[1], true},
		{"sso:CreateAccountAssignment", "arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-cccccccccccccccc", false},
		{"sso:DeleteAccountAssignment", "arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-cccccccccccccccc", false},
		{"sso:CreateAccountAssignment", "arn:aws:sso:::instance/ssoins-2222222222222222", false},
		{"sso:DescribePermissionSet", "arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-cccccccccccccccc", true},
		{"sso:DescribePermissionSet", "arn:aws:sso:::permissionSet/ssoins-2222222222222222/ps-aaaaaaaaaaaaaaaa", false},
		{"sso:CreatePermissionSet", instance, false},
		{"sso:ProvisionPermissionSet", ps[0], false},
		{"identitystore:CreateGroupMembership", group, true},
		{"identitystore:CreateGroupMembership", "arn:aws:identitystore:::group/1111111111-aaaaaaaa-0000-0000-0000-000000000002", false},
		{"identitystore:GetUserId", "arn:aws:identitystore::999999999999:identitystore/d-1111111111", true},
		{"identitystore:GetUserId", "arn:aws:identitystore::999999999999:identitystore/d-2222222222", false},
		{"identitystore:CreateUser", store, false},
	} {
		if got := allowed(tc.action, tc.resource); got != tc.want {
			t.Errorf("%s on %s allowed = %v, want %v", tc.action, tc.resource, got, tc.want)
		}
	}

	// No other statement in the template touches Identity Center.
	for _, st := range allStatements(tpl) {
		for _, a := range st.actions {
			svc, _, _ := strings.Cut(a, ":")
			if (svc == "sso" || svc == "identitystore") && !strings.HasPrefix(st.where, "IdentityCenter") {
				t.Errorf("%s: %s outside the Identity Center policies", st.where, a)
			}
		}
	}
}

// TestTemplateIdentityCenterIsOffByDefault: every Identity Center
// parameter defaults to empty, the conditions need the instance and the
// identity store, and the worker's environment is empty without them.
func TestTemplateIdentityCenterIsOffByDefault(t *testing.T) {
	tpl := loadRepoTemplate(t)
	params := tpl.Raw["Parameters"].(map[string]any)
	for _, p := range []string{"IdentityCenterInstanceArn", "IdentityCenterIdentityStoreId", "IdentityCenterPermissionSetArns",
		"IdentityCenterGroupArns", "IdentityCenterPortalUrl"} {
		pm, ok := params[p].(map[string]any)
		if !ok || pm["Default"] != "" {
			t.Errorf("parameter %s: %v, want one defaulting to empty", p, params[p])
		}
	}
	conds := tpl.Raw["Conditions"].(map[string]any)
	notEmpty := func(p string) map[string]any {
		return map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": p}, ""}}}}
	}
	if !reflect.DeepEqual(conds["HasIdentityCenter"], map[string]any{"Fn::And": []any{notEmpty("IdentityCenterInstanceArn"), notEmpty("IdentityCenterIdentityStoreId")}}) {
		t.Errorf("HasIdentityCenter = %v, want both the instance and the identity store set", conds["HasIdentityCenter"])
	}
	for _, c := range []string{"HasIdentityCenterPermissionSets", "HasIdentityCenterGroups"} {
		and, _ := conds[c].(map[string]any)["Fn::And"].([]any)
		if len(and) != 2 || !reflect.DeepEqual(and[0], map[string]any{"Condition": "HasIdentityCenter"}) {
			t.Errorf("%s = %v, want HasIdentityCenter and a non-empty list", c, conds[c])
		}
	}
	env := functionEnv(tpl, "WorkerFunction")
	for _, v := range []string{"TOKKEN_IDC_INSTANCE_ARN", "TOKKEN_IDC_IDENTITY_STORE_ID"} {
		ifs, _ := env[v].(map[string]any)["Fn::If"].([]any)
		if len(ifs) != 3 || ifs[0] != "HasIdentityCenter" || ifs[2] != "" {
			t.Errorf("worker %s = %v, want empty unless HasIdentityCenter", v, env[v])
		}
	}
	if _, ok := functionEnv(tpl, "WorkerFunction")["TOKKEN_IDC_PORTAL_URL"]; !ok {
		t.Error("the worker has no TOKKEN_IDC_PORTAL_URL")
	}
	for v := range functionEnv(tpl, "IngressFunction") {
		if strings.HasPrefix(v, "TOKKEN_IDC_") {
			t.Errorf("the ingress has %s", v)
		}
	}
}
