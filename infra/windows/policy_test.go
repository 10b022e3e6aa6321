package windows

import (
	_ "embed"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/infra/cfn"
)

var update = flag.Bool("update", false, "rewrite launch-template.yaml's UserData block from userdata.ps1")

// launchTemplateFile is the CloudFormation stack operators deploy from the
// repository (docs/windows.md); tokken itself never reads it.
//
//go:embed launch-template.yaml
var launchTemplateFile string

func decodeJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("policy is not valid JSON: %v", err)
	}
	return v
}

// checkPolicy asserts the policy grants exactly what the instance needs:
// CreateTags on itself with the script keys only, DescribeTags, and
// GetSecretValue on the one secret.
func checkPolicy(t *testing.T, doc map[string]any, scheme domainjoin.TagScheme, secret any) {
	t.Helper()
	if doc["Version"] != "2012-10-17" {
		t.Errorf("Version = %v", doc["Version"])
	}
	stmts, _ := doc["Statement"].([]any)
	if len(stmts) != 3 {
		t.Fatalf("want 3 statements, got %d", len(stmts))
	}
	seen := map[string]map[string]any{}
	for _, s := range stmts {
		st, _ := s.(map[string]any)
		for k := range st {
			if !slices.Contains([]string{"Sid", "Effect", "Action", "Resource", "Condition"}, k) {
				t.Errorf("statement %v uses %s (only Allow with Action/Resource is expected)", st["Sid"], k)
			}
		}
		if st["Effect"] != "Allow" {
			t.Errorf("statement %v: Effect %v", st["Sid"], st["Effect"])
		}
		action, ok := st["Action"].(string)
		if !ok || strings.Contains(action, "*") {
			t.Errorf("statement %v: Action must be one named action, got %v", st["Sid"], st["Action"])
		}
		seen[action] = st
	}
	tag, describe, get := seen["ec2:CreateTags"], seen["ec2:DescribeTags"], seen["secretsmanager:GetSecretValue"]
	if tag == nil || describe == nil || get == nil {
		t.Fatalf("want CreateTags, DescribeTags, GetSecretValue; got %v", slices.Collect(func(yield func(string) bool) {
			for k := range seen {
				if !yield(k) {
					return
				}
			}
		}))
	}
	if r, _ := tag["Resource"].(string); !strings.HasSuffix(r, ":ec2:*:*:instance/*") {
		t.Errorf("CreateTags resource = %v, want instances only", tag["Resource"])
	}
	cond, _ := tag["Condition"].(map[string]any)
	like, _ := cond["ArnLike"].(map[string]any)
	if src, _ := like["ec2:SourceInstanceARN"].(string); !strings.HasSuffix(src, ":ec2:*:*:instance/${ec2:InstanceId}") {
		t.Errorf("CreateTags must require ec2:SourceInstanceARN = the tagged instance, got %v", like)
	}
	all, _ := cond["ForAllValues:StringEquals"].(map[string]any)
	var keys []string
	for _, k := range all["aws:TagKeys"].([]any) {
		keys = append(keys, k.(string))
	}
	if !slices.Equal(keys, scheme.ScriptKeys()) {
		t.Errorf("CreateTags tag keys = %v, want the script keys %v", keys, scheme.ScriptKeys())
	}
	for _, k := range []string{scheme.Control, scheme.Request} {
		if slices.Contains(keys, k) {
			t.Errorf("the instance must not be able to set %q (the bot's request)", k)
		}
	}
	if null, _ := cond["Null"].(map[string]any); null["aws:TagKeys"] != "false" {
		t.Errorf("CreateTags must require aws:TagKeys to be present, got %v", cond["Null"])
	}
	if describe["Resource"] != "*" || describe["Condition"] != nil {
		t.Errorf("DescribeTags: %v", describe)
	}
	if !reflect.DeepEqual(get["Resource"], secret) || get["Condition"] != nil {
		t.Errorf("GetSecretValue resource = %v, want %v", get["Resource"], secret)
	}
}

func TestShippedPolicyGrantsOnlyWhatIsListed(t *testing.T) {
	checkPolicy(t, decodeJSON(t, policyFile), DefaultScheme(), SecretARNPlaceholder)
}

func TestInstancePolicyRendering(t *testing.T) {
	custom := DefaultConfig()
	custom.Tags.Ack, custom.Tags.Status, custom.Tags.Progress, custom.Tags.Reason = "ad-ack", "ad-status", "ad-progress", "ad-reason"
	tests := []struct {
		name      string
		cfg       Config
		arn       string
		partition string
		wantErr   string
	}{
		{"default", DefaultConfig(), "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:ad-join-AbCdEf", "aws", ""},
		{"custom keys, china", custom, "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:ad/join-AbCdEf", "aws-cn", ""},
		{"not an arn", DefaultConfig(), "ad-join", "", "not a Secrets Manager secret ARN"},
		{"wildcard secret", DefaultConfig(), "arn:aws:secretsmanager:us-east-1:123456789012:secret:*", "", "not a Secrets Manager secret ARN"},
		{"other service", DefaultConfig(), "arn:aws:ssm:us-east-1:123456789012:parameter/x", "", "not a Secrets Manager secret ARN"},
		{"bad config", Config{Tags: DefaultScheme(), SecretTag: "has space", MaxReboots: 2}, "arn:aws:secretsmanager:us-east-1:123456789012:secret:x", "", "secret tag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := InstancePolicy(tc.cfg, tc.arn)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			doc := decodeJSON(t, got)
			checkPolicy(t, doc, tc.cfg.Tags, tc.arn)
			if strings.Count(got, "arn:"+tc.partition+":") != 3 {
				t.Errorf("want every ARN in partition %s:\n%s", tc.partition, got)
			}
		})
	}
}

func loadTemplate(t *testing.T) *cfn.Template {
	t.Helper()
	tpl, err := cfn.Parse([]byte(launchTemplateFile))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestLaunchTemplate(t *testing.T) {
	if *update {
		rewriteTemplateUserData(t)
	}
	tpl := loadTemplate(t)
	lts := tpl.OfType("AWS::EC2::LaunchTemplate")
	if len(lts) != 1 {
		t.Fatalf("want one launch template, got %v", lts)
	}
	data, _ := tpl.Resources[lts[0]].Properties["LaunchTemplateData"].(map[string]any)

	md, _ := data["MetadataOptions"].(map[string]any)
	if md["HttpTokens"] != "required" || md["InstanceMetadataTags"] != "enabled" || md["HttpEndpoint"] != "enabled" {
		t.Errorf("MetadataOptions = %v: want IMDSv2 only with instance tags in metadata", md)
	}

	ud, _ := data["UserData"].(map[string]any)
	if got, _ := ud["Fn::Base64"].(string); got != userDataFile {
		t.Errorf("UserData is not !Base64 of userdata.ps1 verbatim; run: go test ./infra/windows -run TestLaunchTemplate -update")
	}

	// The instance profile carries the role whose inline policy is
	// instance-policy.json with the secret as a parameter.
	prof, _ := data["IamInstanceProfile"].(map[string]any)
	att, _ := prof["Arn"].(map[string]any)["Fn::GetAtt"].([]any)
	if len(att) != 2 || att[1] != "Arn" {
		t.Fatalf("IamInstanceProfile.Arn = %v, want !GetAtt <profile>.Arn", prof)
	}
	profile := tpl.Resources[att[0].(string)]
	if profile.Type != "AWS::IAM::InstanceProfile" {
		t.Fatalf("%v is %q, not an instance profile", att[0], profile.Type)
	}
	roles, _ := profile.Properties["Roles"].([]any)
	if len(roles) != 1 {
		t.Fatalf("instance profile roles = %v", roles)
	}
	roleID, _ := roles[0].(map[string]any)["Ref"].(string)
	role := tpl.Resources[roleID]
	if role.Type != "AWS::IAM::Role" {
		t.Fatalf("profile role %q is %q", roleID, role.Type)
	}
	if _, ok := role.Properties["ManagedPolicyArns"]; ok {
		t.Errorf("the instance role must carry only the domain policy")
	}
	pols, _ := role.Properties["Policies"].([]any)
	if len(pols) != 1 {
		t.Fatalf("want one inline policy, got %d", len(pols))
	}
	doc, _ := pols[0].(map[string]any)["PolicyDocument"].(map[string]any)
	secretRef := map[string]any{"Ref": "JoinSecretArn"}
	checkPolicy(t, doc, DefaultScheme(), secretRef)

	want := decodeJSON(t, policyFile)
	for _, s := range want["Statement"].([]any) {
		if st := s.(map[string]any); st["Resource"] == SecretARNPlaceholder {
			st["Resource"] = secretRef
		}
	}
	if !reflect.DeepEqual(doc, want) {
		gotJSON, _ := json.MarshalIndent(doc, "", "  ")
		t.Errorf("template policy differs from instance-policy.json:\n%s", gotJSON)
	}

	// The secret reaches the script through the instance's own tag.
	specs, _ := data["TagSpecifications"].([]any)
	found := false
	for _, s := range specs {
		for _, tg := range s.(map[string]any)["Tags"].([]any) {
			m := tg.(map[string]any)
			if m["Key"] == TagSecret && reflect.DeepEqual(m["Value"], secretRef) {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("launch template must tag instances %s = !Ref JoinSecretArn", TagSecret)
	}
}

// rewriteTemplateUserData replaces the UserData block of
// launch-template.yaml with userdata.ps1, indented under it.
func rewriteTemplateUserData(t *testing.T) {
	t.Helper()
	const marker = "UserData: !Base64 |\n"
	at := strings.Index(launchTemplateFile, marker)
	if at < 0 {
		t.Fatal("no UserData block in launch-template.yaml")
	}
	lineStart := strings.LastIndex(launchTemplateFile[:at], "\n") + 1
	indent := strings.Repeat(" ", at-lineStart+2)
	rest := launchTemplateFile[at+len(marker):]
	end := 0
	for end < len(rest) {
		nl := strings.IndexByte(rest[end:], '\n')
		if nl < 0 {
			end = len(rest)
			break
		}
		line := rest[end : end+nl]
		if strings.TrimSpace(line) != "" && !strings.HasPrefix(line, indent) {
			break
		}
		end += nl + 1
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(userDataFile, "\n") {
		if strings.TrimSpace(l) != "" {
			b.WriteString(indent)
		}
		b.WriteString(l)
	}
	out := launchTemplateFile[:at+len(marker)] + b.String() + "\n" + strings.TrimLeft(rest[end:], "\n")
	if err := os.WriteFile("launch-template.yaml", []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	launchTemplateFile = out
}
