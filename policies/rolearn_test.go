package policies

import (
	"strings"
	"testing"
)

func TestValidRoleARN(t *testing.T) {
	cases := []struct {
		arn  string
		want bool
	}{
		{"arn:aws:iam::123456789012:role/tokken-prod", true},
		{"arn:aws-us-gov:iam::123456789012:role/path/to/role", true},
		{"arn:aws:iam::123456789012:role/" + strings.Repeat("r", maxRoleName), true},
		{"arn:aws:iam::123456789012:role/" + strings.Repeat("r", maxRoleName+1), false},
		{"arn:aws:iam::123456789012:role/", false},
		{"arn:aws:iam::12345:role/x", false},
		{"arn:aws:iam::123456789012:user/x", false},
		{"arn:aws:iam::123456789012:role/bad name", false},
	}
	for _, c := range cases {
		if got := validRoleARN(c.arn); got != c.want {
			t.Errorf("validRoleARN(%.60q) = %v, want %v", c.arn, got, c.want)
		}
	}
}
