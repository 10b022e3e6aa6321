package awsgrant

import (
	"regexp"
	"strings"
	"testing"
)

// The patterns as they were with bounded repeats, before length checks
// replaced those: parseRoleARN and validSessionName must accept exactly
// what these accept. They are compiled here, in the tests only.
var (
	boundedRoleARNRE     = regexp.MustCompile(`^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$`)
	boundedSessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
)

const arnPrefix = "arn:aws:iam::123456789012:role/"

func TestParseRoleARNLimits(t *testing.T) {
	cases := []struct {
		arn                      string
		ok                       bool
		partition, account, name string
	}{
		{arnPrefix + "tokken-prod", true, "aws", "123456789012", "tokken-prod"},
		{"arn:aws-us-gov:iam::210987654321:role/path/to/r", true, "aws-us-gov", "210987654321", "r"},
		{arnPrefix + strings.Repeat("n", maxRoleName), true, "aws", "123456789012", strings.Repeat("n", maxRoleName)},
		{arnPrefix + strings.Repeat("p", 200) + "/" + strings.Repeat("n", maxRoleName), true, "aws", "123456789012", strings.Repeat("n", maxRoleName)},
		{arnPrefix + "a/" + strings.Repeat("n", maxRoleName+1), false, "", "", ""},
		{arnPrefix + strings.Repeat("n", maxRoleName+1), false, "", "", ""},
		{arnPrefix, false, "", "", ""},
		{arnPrefix + "path/", false, "", "", ""},
		{arnPrefix + "a//b", false, "", "", ""},
		{"", false, "", "", ""},
		{"arn:aws:iam::12345678901:role/r", false, "", "", ""},
		{"arn:aws:iam::123456789012:user/r", false, "", "", ""},
		{arnPrefix + "bad name", false, "", "", ""},
		{arnPrefix + "bad*", false, "", "", ""},
		{arnPrefix + "r\n", false, "", "", ""},
		{arnPrefix + "ré", false, "", "", ""},
	}
	for _, c := range cases {
		r, err := parseRoleARN(c.arn)
		if (err == nil) != c.ok {
			t.Errorf("parseRoleARN(%.80q) error = %v, want ok %v", c.arn, err, c.ok)
		}
		if want := (roleARN{partition: c.partition, account: c.account, name: c.name}); r != want {
			t.Errorf("parseRoleARN(%.80q) = %+v, want %+v", c.arn, r, want)
		}
		if old := boundedRoleARNRE.MatchString(c.arn); old != c.ok {
			t.Errorf("case %.80q: the bounded pattern says %v, the table %v: the table is wrong", c.arn, old, c.ok)
		}
	}
}

func TestValidSessionName(t *testing.T) {
	cases := []struct {
		s    string
		want bool
	}{
		{"r-0123456789ab", true},
		{"ab", true},
		{"_+=,.@-", true},
		{strings.Repeat("s", maxSessionName), true},
		{strings.Repeat("s", maxSessionName+1), false},
		{"a", false},
		{"", false},
		{"r-*", false},
		{"r-?", false},
		{"r 1", false},
		{"r/1", false},
		{"r:1", false},
		{"r-1\n", false},
		{"rö", false},
	}
	for _, c := range cases {
		if got := validSessionName(c.s); got != c.want {
			t.Errorf("validSessionName(%.70q) = %v, want %v", c.s, got, c.want)
		}
		if old := boundedSessionNameRE.MatchString(c.s); old != c.want {
			t.Errorf("case %.70q: the bounded pattern says %v, the table %v: the table is wrong", c.s, old, c.want)
		}
	}
}

// FuzzLimits checks that parseRoleARN and validSessionName accept exactly
// what the bounded patterns they replace accept, and that parseRoleARN
// returns what the bounded pattern captures.
//
//	go test -run '^$' -fuzz FuzzLimits -fuzztime 20s ./infra/awsgrant/
func FuzzLimits(f *testing.F) {
	f.Add(arnPrefix + "tokken-prod")
	f.Add(arnPrefix + "p/" + strings.Repeat("n", maxRoleName+1))
	f.Add(strings.Repeat("s", maxSessionName+1))
	f.Add("r-0123456789ab")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRoleARN(s)
		m := boundedRoleARNRE.FindStringSubmatch(s)
		switch {
		case (err == nil) != (m != nil):
			t.Errorf("parseRoleARN(%q) error = %v, the bounded pattern matches: %v", s, err, m != nil)
		case m != nil && r != (roleARN{partition: m[1], account: m[2], name: m[3]}):
			t.Errorf("parseRoleARN(%q) = %+v, the bounded pattern captures %q", s, r, m[1:])
		}
		if got, want := validSessionName(s), boundedSessionNameRE.MatchString(s); got != want {
			t.Errorf("validSessionName(%q) = %v, the bounded pattern %v", s, got, want)
		}
	})
}
