package domainjoin

import (
	"regexp"
	"strings"
	"testing"
)

// The patterns as they were with bounded repeats, before length checks
// replaced those: ValidTagKey and validTagValue must accept exactly
// what these accept (keys also refuse ".", ".." and "_index", as before).
// They are compiled here, in the tests only.
var (
	boundedKeyRE   = regexp.MustCompile(`^[A-Za-z0-9+\-=.,_:@]{1,128}$`)
	boundedValueRE = regexp.MustCompile(`^[A-Za-z0-9+\-=.,_:@]{1,64}$`)
)

func boundedKey(k string) bool {
	return boundedKeyRE.MatchString(k) && k != "." && k != ".." && k != "_index"
}

// badChars are characters next to the accepted ones, or easy to let
// through by mistake.
var badChars = []string{" ", "/", "\\", "*", "'", "\"", "<", "\n", "\t", "\x00", "é", "ａ", "$"}

func TestValidTagKey(t *testing.T) {
	cases := []struct {
		k    string
		want bool
	}{
		{"domain-status", true},
		{"k", true},
		{"+-=.,_:@", true},
		{"...", true},
		{"_index2", true},
		{"x_index", true},
		{strings.Repeat("k", MaxTagKey), true},
		{strings.Repeat("k", MaxTagKey-1) + "@", true},
		{strings.Repeat("k", MaxTagKey+1), false},
		{strings.Repeat("k", MaxTagKey) + "\n", false},
		{"", false},
		{".", false},
		{"..", false},
		{"_index", false},
		{"_INDEX", true},
		{"has space", false},
		{"a/b", false},
		{"key\n", false},
		{"\nkey", false},
	}
	for _, bad := range badChars {
		cases = append(cases, struct {
			k    string
			want bool
		}{"key" + bad, false})
	}
	for _, c := range cases {
		if got := ValidTagKey(c.k); got != c.want {
			t.Errorf("ValidTagKey(%.70q) = %v, want %v", c.k, got, c.want)
		}
		if old := boundedKey(c.k); old != c.want {
			t.Errorf("case %.70q: the bounded pattern says %v, the table %v: the table is wrong", c.k, old, c.want)
		}
	}
}

func TestValidTagValue(t *testing.T) {
	cases := []struct {
		v    string
		want bool
	}{
		{"joined", true},
		{"v", true},
		{".", true}, // values may be anything tagChars spells
		{"_index", true},
		{strings.Repeat("v", maxTagValue), true},
		{strings.Repeat("v", maxTagValue+1), false},
		{strings.Repeat("v", maxTagValue) + "\n", false},
		{"", false},
		{"two words", false},
	}
	for _, bad := range badChars {
		cases = append(cases, struct {
			v    string
			want bool
		}{"v" + bad, false})
	}
	for _, c := range cases {
		if got := validTagValue(c.v); got != c.want {
			t.Errorf("validTagValue(%.70q) = %v, want %v", c.v, got, c.want)
		}
		if old := boundedValueRE.MatchString(c.v); old != c.want {
			t.Errorf("case %.70q: the bounded pattern says %v, the table %v: the table is wrong", c.v, old, c.want)
		}
	}
}

// TestTagSchemeLimits checks the limits where they are met: a scheme one
// character over a limit is refused with a message that names the rule.
func TestTagSchemeLimits(t *testing.T) {
	cases := []struct {
		name    string
		change  func(*TagScheme)
		wantErr string
	}{
		{"longest key", func(s *TagScheme) { s.Reason = strings.Repeat("r", MaxTagKey) }, ""},
		{"longest value", func(s *TagScheme) { s.Pending = strings.Repeat("p", maxTagValue) }, ""},
		{"key too long", func(s *TagScheme) { s.Reason = strings.Repeat("r", MaxTagKey+1) }, "reason key"},
		{"key _index", func(s *TagScheme) { s.Progress = "_index" }, `other than ".", ".." and "_index"`},
		{"value too long", func(s *TagScheme) { s.Pending = strings.Repeat("p", maxTagValue+1) }, "pending value"},
		{"empty value", func(s *TagScheme) { s.Join = "" }, "join value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := TagScheme{
				Control: "domain-control", Join: "join", Unjoin: "unjoin", Request: "domain-request", Ack: "domain-ack",
				Status: "domain-status", Joined: "joined", Unjoined: "unjoined", Failed: "failed", Pending: "pending",
				Progress: "domain-progress", Reason: "domain-reason",
			}
			c.change(&s)
			err := s.Validate()
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("Validate = %v, want an error containing %q", err, c.wantErr)
			}
		})
	}
}

// FuzzTagLimits checks that ValidTagKey and validTagValue accept exactly
// what the bounded patterns they replace accept.
//
//	go test -run '^$' -fuzz FuzzTagLimits -fuzztime 20s ./bot/domainjoin/
func FuzzTagLimits(f *testing.F) {
	f.Add("domain-status")
	f.Add("_index")
	f.Add(strings.Repeat("k", MaxTagKey))
	f.Add(strings.Repeat("k", MaxTagKey+1))
	f.Add(strings.Repeat("v", maxTagValue+1))
	f.Add("key\n")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidTagKey(s), boundedKey(s); got != want {
			t.Errorf("ValidTagKey(%q) = %v, the bounded pattern %v", s, got, want)
		}
		if got, want := validTagValue(s), boundedValueRE.MatchString(s); got != want {
			t.Errorf("validTagValue(%q) = %v, the bounded pattern %v", s, got, want)
		}
	})
}
