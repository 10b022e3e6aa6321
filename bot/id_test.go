package bot

import (
	"regexp"
	"testing"
)

func TestNewID(t *testing.T) {
	shape := regexp.MustCompile(`^r-[0-9a-hjkmnp-tv-z]{12}$`)
	seen := map[string]bool{}
	for range 10000 {
		id := NewID("r-")
		if !shape.MatchString(id) {
			t.Fatalf("NewID(%q) = %q, want r- and 12 lowercase base32 characters", "r-", id)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
}
