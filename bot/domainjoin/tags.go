package domainjoin

import (
	"fmt"
	"regexp"
	"sync"
)

// TagScheme is the vocabulary shared by tokken and the instance-side user
// data (infra/windows): which EC2 tag keys carry the request and the
// instance's answers, and which values they take. The bot writes Control and
// Request; the script writes Ack, Status, Progress and Reason. Its defaults
// live in infra/windows (the script's defaults and that package's constants
// are tested to agree); wiring passes windows.DefaultScheme() or a
// configured variant here.
type TagScheme struct {
	// Control is the key the bot sets to ask for a change; Join and Unjoin
	// are its values (defaults "domain", "join", "unjoin").
	Control string `json:"control"`
	Join    string `json:"join"`
	Unjoin  string `json:"unjoin"`
	// Request carries the operation id with the control tag, so the script
	// can tell a new request from a repeated boot (default "domain-request").
	Request string `json:"request"`
	// Ack is the request id the script's status, progress and reason refer
	// to. tokken ignores those tags until Ack equals its operation id, so a
	// stale "failed" from an earlier attempt is never mistaken for an answer
	// (default "domain-ack").
	Ack string `json:"ack"`
	// Status is the outcome key; Joined, Unjoined, Failed are terminal and
	// Pending means the script is working on Ack (defaults "domain-status",
	// "joined", "unjoined", "failed", "pending").
	Status   string `json:"status"`
	Joined   string `json:"joined"`
	Unjoined string `json:"unjoined"`
	Failed   string `json:"failed"`
	Pending  string `json:"pending"`
	// Progress is free-form progress the script reports ("joining",
	// "rebooting", ...), shown in the operation's thread as it changes
	// (default "domain-progress").
	Progress string `json:"progress"`
	// Reason is the short ASCII reason the script gives with Failed
	// (default "domain-reason").
	Reason string `json:"reason"`
}

// Tag limits. The lengths are checked apart from tagChars: a bounded repeat
// such as {1,128} compiles to one program state per repetition, which the
// first request of each Lambda cold start would pay for.
const (
	// MaxTagKey is the longest tag key EC2 accepts.
	MaxTagKey = 128
	// maxTagValue is the longest value the scheme accepts.
	maxTagValue = 64
)

// TagKeyRule says in words what ValidTagKey accepts, for error messages.
const TagKeyRule = `1-128 of A-Z a-z 0-9 + - = . , _ : @, other than ".", ".." and "_index"`

// tagChars are the characters instance-metadata tags accept in a key, and
// the scheme in a value: letters, digits and + - = . , _ : @ (no spaces or
// slashes). ASCII only, so a byte length is a character length.
var tagChars = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9+\-=.,_:@]+$`) })

// ValidTagKey reports whether k can be an instance-metadata tag key: 1 to
// MaxTagKey tagChars, and not ".", ".." or "_index", which instance
// metadata cannot expose.
func ValidTagKey(k string) bool {
	return len(k) <= MaxTagKey && tagChars().MatchString(k) && k != "." && k != ".." && k != "_index"
}

// validTagValue reports whether v is a scheme value: 1 to maxTagValue
// tagChars, a short word that needs no quoting in PowerShell or Slack.
func validTagValue(v string) bool { return len(v) <= maxTagValue && tagChars().MatchString(v) }

// Validate checks that every key is usable as an instance-metadata tag key,
// every value is a short plain word, and no two keys or two values of the
// same key collide.
func (s TagScheme) Validate() error {
	keys := []struct{ name, v string }{
		{"control", s.Control}, {"request", s.Request}, {"ack", s.Ack},
		{"status", s.Status}, {"progress", s.Progress}, {"reason", s.Reason},
	}
	seen := map[string]string{}
	for _, k := range keys {
		if !ValidTagKey(k.v) {
			return fmt.Errorf("tag scheme: %s key %q: want %s", k.name, k.v, TagKeyRule)
		}
		if other, dup := seen[k.v]; dup {
			return fmt.Errorf("tag scheme: %s and %s keys are both %q", other, k.name, k.v)
		}
		seen[k.v] = k.name
	}
	groups := [][]struct{ name, v string }{
		{{"join", s.Join}, {"unjoin", s.Unjoin}},
		{{"joined", s.Joined}, {"unjoined", s.Unjoined}, {"failed", s.Failed}, {"pending", s.Pending}},
	}
	for _, g := range groups {
		vals := map[string]string{}
		for _, v := range g {
			if !validTagValue(v.v) {
				return fmt.Errorf("tag scheme: %s value %q: want 1-64 of A-Z a-z 0-9 + - = . , _ : @", v.name, v.v)
			}
			if other, dup := vals[v.v]; dup {
				return fmt.Errorf("tag scheme: %s and %s values are both %q", other, v.name, v.v)
			}
			vals[v.v] = v.name
		}
	}
	return nil
}

// ScriptKeys are the keys the instance-side script writes: the only keys
// the instance's IAM policy lets it set on itself.
func (s TagScheme) ScriptKeys() []string {
	return []string{s.Ack, s.Status, s.Progress, s.Reason}
}

// ReadKeys are the keys tokken reads to follow an operation (the ones an
// EventBridge "Tag Change on Resource" rule should filter on).
func (s TagScheme) ReadKeys() []string {
	return []string{s.Control, s.Request, s.Ack, s.Status, s.Progress, s.Reason}
}

// controlValue is the Control tag value that asks for action a.
func (s TagScheme) controlValue(a Action) string {
	if a == ActionLeave {
		return s.Unjoin
	}
	return s.Join
}

// doneValue is the Status value that means action a is complete.
func (s TagScheme) doneValue(a Action) string {
	if a == ActionLeave {
		return s.Unjoined
	}
	return s.Joined
}
