package access

import (
	"regexp"
	"strings"
	"testing"
)

// The patterns the plain checks replace, compiled in the tests only: each
// check must accept exactly what its pattern accepts.
var (
	accountIDRE  = regexp.MustCompile(`^[0-9]{12}$`)
	requestIDRE  = regexp.MustCompile(`^r-[0-9a-z]{12}$`)
	ecsTaskIDRE  = regexp.MustCompile(`^[0-9a-f]{32}$`)
	looksLikeDur = regexp.MustCompile(`^[-+.0-9]`)
)

// idChecks pairs each plain check with the pattern it replaces.
var idChecks = []struct {
	name  string
	check func(string) bool
	re    *regexp.Regexp
}{
	{"ValidAccountID", ValidAccountID, accountIDRE},
	{"ValidRequestID", ValidRequestID, requestIDRE},
	{"ValidECSTaskID", ValidECSTaskID, ecsTaskIDRE},
	{"looksLikeDuration", looksLikeDuration, looksLikeDur},
}

func TestIDChecks(t *testing.T) {
	task := strings.Repeat("0123456789abcdef", 2)
	for _, c := range []struct {
		s                         string
		account, request, ecsTask bool
	}{
		{"123456789012", true, false, false},
		{"r-7k3q9x0m2c4d", false, true, false},
		{"r-000000000000", false, true, false},
		{task, false, false, true},
		{"", false, false, false},
		{"12345678901", false, false, false},                   // 11 digits
		{"1234567890123", false, false, false},                 // 13
		{"12345678901a", false, false, false},                  // a letter
		{"12345678901\n", false, false, false},                 // 12 bytes with a newline
		{"123456789012\n", false, false, false},                // trailing newline
		{"１２３４５６７８９０１２", false, false, false},                  // full-width digits
		{"1234567890٣", false, false, false},                   // a non-ASCII digit (12 bytes)
		{" 123456789012", false, false, false},                 // leading space
		{"r-7K3Q9X0M2C4D", false, false, false},                // upper case
		{"R-7k3q9x0m2c4d", false, false, false},                // upper-case prefix
		{"r-7k3q9x0m2c4", false, false, false},                 // 11 characters
		{"r-7k3q9x0m2c4dd", false, false, false},               // 13
		{"r-7k3q9x0m2c4d\n", false, false, false},              // trailing newline
		{"r-7k3q9x0m2c-d", false, false, false},                // a dash
		{"r-7k3q9x0m2\xff\xff", false, false, false},           // invalid UTF-8
		{"r-7k3q9x0m2cé", false, false, false},                 // non-ASCII (12 bytes)
		{"req-7k3q9x0m2c", false, false, false},                // another prefix
		{task[:31], false, false, false},                       // 31 digits
		{task + "0", false, false, false},                      // 33
		{strings.ToUpper(task), false, false, false},           // upper-case hex
		{task[:31] + "g", false, false, false},                 // not hex
		{task[:31] + "\n", false, false, false},                // 32 bytes with a newline
		{task + "\n", false, false, false},                     // trailing newline
		{"0123456789ab" + "0123456789ab", false, false, false}, // 24 digits
	} {
		for _, k := range []struct {
			name  string
			check func(string) bool
			want  bool
		}{
			{"ValidAccountID", ValidAccountID, c.account},
			{"ValidRequestID", ValidRequestID, c.request},
			{"ValidECSTaskID", ValidECSTaskID, c.ecsTask},
		} {
			if got := k.check(c.s); got != k.want {
				t.Errorf("%s(%q) = %v, want %v", k.name, c.s, got, k.want)
			}
		}
	}
	for _, c := range []struct {
		s    string
		want bool
	}{
		{"10m", true}, {"1h30m", true}, {"-5m", true}, {"+1h", true}, {".5h", true}, {"0", true},
		{"", false}, {"h", false}, {"m10", false}, {" 10m", false}, {"٣m", false}, {"１h", false}, {"\xff", false},
	} {
		if got := looksLikeDuration(c.s); got != c.want {
			t.Errorf("looksLikeDuration(%q) = %v, want %v", c.s, got, c.want)
		}
	}
	for _, k := range idChecks {
		for _, s := range []string{"123456789012", "r-7k3q9x0m2c4d", task, "10m", "", "x"} {
			if got, want := k.check(s), k.re.MatchString(s); got != want {
				t.Errorf("%s(%q) = %v, the pattern %v", k.name, s, got, want)
			}
		}
	}
}

// FuzzIDChecks checks that the id checks accept exactly what the patterns
// they replace accept.
//
//	go test -run '^$' -fuzz FuzzIDChecks -fuzztime 20s ./bot/access/
func FuzzIDChecks(f *testing.F) {
	for _, s := range []string{
		"123456789012", "12345678901\n", "1234567890٣", "r-7k3q9x0m2c4d", "r-7K3Q9X0M2C4D", "r-7k3q9x0m2c4d\n",
		strings.Repeat("0123456789abcdef", 2), strings.Repeat("0123456789ABCDEF", 2), "10m", "-1h", "٣m", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, k := range idChecks {
			if got, want := k.check(s), k.re.MatchString(s); got != want {
				t.Errorf("%s(%q) = %v, the pattern %v", k.name, s, got, want)
			}
		}
	})
}
