package bot

import (
	"regexp"
	"strings"
	"testing"
)

// instanceIDRE is the pattern IsInstanceID replaces, compiled in the tests
// only: IsInstanceID must accept exactly what it accepts.
var instanceIDRE = regexp.MustCompile(`^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)

func TestIsInstanceID(t *testing.T) {
	for _, c := range []struct {
		s    string
		want bool
	}{
		{"i-0123abcd", true},
		{"i-0123456789abcdef0", true},
		{"", false},
		{"i-", false},
		{"i-0123abc", false},             // 7 digits
		{"i-0123abcde", false},           // 9
		{"i-0123456789abcdef", false},    // 16
		{"i-0123456789abcdef01", false},  // 18
		{"i-0123ABCD", false},            // upper-case hex
		{"I-0123abcd", false},            // upper-case prefix
		{"i-0123abcg", false},            // not hex
		{"i-0123abc\n", false},           // 8 bytes with a newline
		{"i-0123abcd\n", false},          // trailing newline ($ is the end of text)
		{" i-0123abcd", false},           // leading space
		{"i-0123ab٣", false},             // a non-ASCII digit (8 bytes)
		{"i-0123ab\xff\xff", false},      // invalid UTF-8
		{"x-0123abcd", false},            // other prefix
		{"i-0123abcd,i-0123abcd", false}, // a list
		{strings.Repeat("i-0123abcd", 2), false},
	} {
		if got := IsInstanceID(c.s); got != c.want {
			t.Errorf("IsInstanceID(%q) = %v, want %v", c.s, got, c.want)
		}
		if got := instanceIDRE.MatchString(c.s); got != c.want {
			t.Errorf("the pattern IsInstanceID replaces: %q = %v, want %v", c.s, got, c.want)
		}
	}
}

// FuzzIsInstanceID checks that IsInstanceID accepts exactly what the
// pattern it replaces accepts.
//
//	go test -run '^$' -fuzz FuzzIsInstanceID -fuzztime 20s ./bot/
func FuzzIsInstanceID(f *testing.F) {
	for _, s := range []string{"i-0123abcd", "i-0123456789abcdef0", "i-0123ABCD", "i-0123abcd\n", "i-0123abc٣", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := IsInstanceID(s), instanceIDRE.MatchString(s); got != want {
			t.Errorf("IsInstanceID(%q) = %v, the pattern %v", s, got, want)
		}
	})
}
