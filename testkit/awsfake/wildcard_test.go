package awsfake

import "testing"

func TestWildcardMatch(t *testing.T) {
	cases := []struct {
		pat, s string
		want   bool
	}{
		{"web-*", "web-01", true},
		{"*odd*", "odd*name", true}, // a literal '*' in the value is just a character
		{"*odd*", "an odd name", true},
		{"w?b", "web", true},
		{"w?b", "wb", false},
		{"*", "", true},
		{"a*b", "axxbyb", true},
		{"a*b", "axxby", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	}
	for _, c := range cases {
		if got := wildcardMatch(c.pat, c.s); got != c.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
}
