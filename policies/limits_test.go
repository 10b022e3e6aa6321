package policies

import (
	"regexp"
	"strings"
	"testing"
)

// The patterns as they were with bounded repeats, before a length check
// replaced those: validName and validRoleARN must accept exactly what
// these accept. They are compiled here, in the tests only.
var (
	boundedNameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	boundedRoleARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
)

const arnPrefix = "arn:aws:iam::123456789012:role/"

func TestValidName(t *testing.T) {
	cases := []struct {
		name string
		want bool
	}{
		{"prod-ssm", true},
		{"a", true},
		{"0", true},
		{"a-", true},
		{"a--b", true},
		{strings.Repeat("a", maxName), true},
		{strings.Repeat("a", maxName-1) + "-", true},
		{strings.Repeat("a", maxName+1), false},
		{strings.Repeat("a", maxName) + "-", false},
		{"", false},
		{"-a", false},
		{"-", false},
		{"Prod", false},
		{"prod_ssm", false},
		{"prod ssm", false},
		{"prod.ssm", false},
		{"prod\n", false},
		{"prod\nssm", false},
		{"\nprod", false},
		{"pröd", false},
		{"ａ", false}, // full-width a
	}
	for _, c := range cases {
		if got := validName(c.name); got != c.want {
			t.Errorf("validName(%.70q) = %v, want %v", c.name, got, c.want)
		}
		if old := boundedNameRE.MatchString(c.name); old != c.want {
			t.Errorf("case %.70q: the bounded pattern says %v, the table %v: the table is wrong", c.name, old, c.want)
		}
	}
}

func TestValidRoleARN(t *testing.T) {
	cases := []struct {
		arn  string
		want bool
	}{
		{"arn:aws:iam::123456789012:role/tokken-prod", true},
		{"arn:aws-us-gov:iam::123456789012:role/path/to/role", true},
		{"arn:aws-cn:iam::123456789012:role/a", true},
		{arnPrefix + "r", true},
		{arnPrefix + "/", true}, // the pattern allows it; IAM would refuse it later
		{arnPrefix + "with+=,.@_-chars/and/path", true},
		{arnPrefix + strings.Repeat("r", maxRoleName), true},
		{arnPrefix + strings.Repeat("p/", maxRoleName/2), true},
		{arnPrefix + strings.Repeat("r", maxRoleName+1), false},
		{arnPrefix + strings.Repeat("p/", maxRoleName/2) + "r", false},
		{arnPrefix, false},
		{"", false},
		{"arn:aws:iam::12345:role/x", false},
		{"arn:aws:iam::1234567890123:role/x", false},
		{"arn:aws:iam::123456789012:user/x", false},
		{"arn:aws:iam::123456789012:role/bad name", false},
		{"arn:aws:iam::123456789012:role/bad*name", false},
		{"arn:aws:iam::123456789012:role/r\n", false},
		{"arn:aws:iam::123456789012:role/rö", false},
		{"arn:AWS:iam::123456789012:role/r", false},
		{"xarn:aws:iam::123456789012:role/r", false},
	}
	for _, c := range cases {
		if got := validRoleARN(c.arn); got != c.want {
			t.Errorf("validRoleARN(%.70q) = %v, want %v", c.arn, got, c.want)
		}
		if old := boundedRoleARNRE.MatchString(c.arn); old != c.want {
			t.Errorf("case %.70q: the bounded pattern says %v, the table %v: the table is wrong", c.arn, old, c.want)
		}
	}
}

// TestNameLimitInFiles checks the limit where users meet it: a profile or
// group name one character too long is reported with its line.
func TestNameLimitInFiles(t *testing.T) {
	long := strings.Repeat("n", maxName+1)
	var probs Problems
	parseProfiles(report{file: "policies/" + ProfilesFile, probs: &probs}, []byte("profiles:\n  "+long+":\n    kind: sts\n"))
	parseGroups(report{file: "policies/" + GroupsFile, probs: &probs}, []byte("groups:\n  "+long+":\n    members: [U0SRE]\n"))
	want := `policies/profiles.yaml:2: profile name "` + long + `" must be lower-case letters, digits and dashes (1-63, not starting with a dash)
policies/groups.yaml:2: group name "` + long + `" must be lower-case letters, digits and dashes (1-63, not starting with a dash)`
	if got := probs.Error(); got != want {
		t.Errorf("problems:\n%s\nwant:\n%s", got, want)
	}
}

// FuzzNameLimits checks that validName and validRoleARN accept exactly
// what the bounded patterns they replace accept.
//
//	go test -run '^$' -fuzz FuzzNameLimits -fuzztime 20s ./policies/
func FuzzNameLimits(f *testing.F) {
	f.Add("prod-ssm")
	f.Add(strings.Repeat("a", maxName+1))
	f.Add(arnPrefix + strings.Repeat("r", maxRoleName))
	f.Add(arnPrefix + strings.Repeat("r", maxRoleName+1))
	f.Add("arn:aws-us-gov:iam::123456789012:role/path/to/role\n")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validName(s), boundedNameRE.MatchString(s); got != want {
			t.Errorf("validName(%q) = %v, the bounded pattern %v", s, got, want)
		}
		if got, want := validRoleARN(s), boundedRoleARNRE.MatchString(s); got != want {
			t.Errorf("validRoleARN(%q) = %v, the bounded pattern %v", s, got, want)
		}
	})
}
