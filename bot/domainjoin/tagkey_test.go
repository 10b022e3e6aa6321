package domainjoin

import (
	"strings"
	"testing"
)

func TestValidTagKeyAndValue(t *testing.T) {
	keys := []struct {
		k    string
		want bool
	}{
		{"domain-status", true},
		{strings.Repeat("k", 128), true},
		{strings.Repeat("k", 129), false},
		{"", false},
		{".", false},
		{"..", false},
		{"_index", false},
		{"has space", false},
		{"a/b", false},
	}
	for _, c := range keys {
		if got := ValidTagKey(c.k); got != c.want {
			t.Errorf("ValidTagKey(%.40q) = %v, want %v", c.k, got, c.want)
		}
	}
	if !validTagValue(strings.Repeat("v", 64)) || validTagValue(strings.Repeat("v", 65)) || validTagValue("") {
		t.Error("validTagValue does not bound values to 1-64 characters")
	}
}
