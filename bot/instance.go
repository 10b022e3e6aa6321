package bot

import "strings"

// IsInstanceID reports whether s has the shape of an EC2 instance id ("i-"
// and 8 or 17 lowercase hex digits). It is the one check of that shape:
// access, domain operations and alerts all use it. (No regexp: a pattern
// costs its compilation in a Lambda cold start.)
func IsInstanceID(s string) bool {
	rest, ok := strings.CutPrefix(s, "i-")
	if !ok || (len(rest) != 8 && len(rest) != 17) {
		return false
	}
	for _, c := range rest {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
