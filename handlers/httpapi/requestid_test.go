package httpapi

import (
	"regexp"
	"strings"
	"testing"
)

// requestIDRE is the pattern validRequestID replaces, compiled in the
// tests only: validRequestID must accept exactly what it accepts.
var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

func TestValidRequestID(t *testing.T) {
	for _, c := range []struct {
		id   string
		want bool
	}{
		{"lambda-req-42", true},
		{"c0ffee00-1234-4abc-8def-0123456789ab", true},
		{"a", true},
		{"A.b_c:d-9", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{strings.Repeat("x", 63) + "\n", false}, // 64 bytes with a newline
		{"req-42\n", false},                     // trailing newline
		{"bad id with spaces", false},
		{"id/slash", false},
		{"id\x00", false},
		{"ｉｄ", false},     // full-width letters
		{"id٣", false},    // a non-ASCII digit
		{"id\xff", false}, // invalid UTF-8
		{"id\"><script>", false},
	} {
		if got := validRequestID(c.id); got != c.want {
			t.Errorf("validRequestID(%q) = %v, want %v", c.id, got, c.want)
		}
		if got := requestIDRE.MatchString(c.id); got != c.want {
			t.Errorf("the pattern validRequestID replaces: %q = %v, want %v", c.id, got, c.want)
		}
	}
}

// FuzzValidRequestID checks that validRequestID accepts exactly what the
// pattern it replaces accepts.
//
//	go test -run '^$' -fuzz FuzzValidRequestID -fuzztime 20s ./handlers/httpapi/
func FuzzValidRequestID(f *testing.F) {
	for _, s := range []string{"lambda-req-42", "", strings.Repeat("x", 64), strings.Repeat("x", 65), "req-42\n", "id٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := validRequestID(id), requestIDRE.MatchString(id); got != want {
			t.Errorf("validRequestID(%q) = %v, the pattern %v", id, got, want)
		}
	})
}
