package domainjoin

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Verb is the first word of a /domain command.
type Verb string

// Verbs.
const (
	VerbJoin   Verb = "join"
	VerbLeave  Verb = "leave"
	VerbStatus Verb = "status"
	VerbHelp   Verb = "help"
)

// Command is a parsed /domain command.
type Command struct {
	Verb Verb `json:"verb"`
	// Instance is an instance id or a Name tag, as typed (quotes removed).
	Instance string `json:"instance,omitempty"`
	// Force runs join/leave even if domain-status says it is done already.
	Force bool `json:"force,omitempty"`
}

// Action is the operation the command asks for (join and leave only).
func (c Command) Action() Action {
	if c.Verb == VerbLeave {
		return ActionLeave
	}
	return ActionJoin
}

// Usage is the help text, also appended to every parse error.
const Usage = "Usage: `/domain join <instance> [--force]`, `/domain leave <instance> [--force]`, " +
	"`/domain status <instance>`, `/domain help`. <instance> is an instance id (i-...) or its exact Name tag."

// maxRef is the longest instance reference accepted (a Name tag value is at
// most 256 characters).
const maxRef = 256

// ParseCommand parses the text after /domain. Errors are *UserError whose
// text says what was wrong and what is allowed. Words are separated by
// spaces; a name with spaces may be typed as is or in quotes.
func ParseCommand(text string) (Command, error) {
	if !utf8.ValidString(text) {
		return Command{}, usageErrorf("The command is not valid text.")
	}
	words := strings.Fields(text)
	if len(words) == 0 {
		return Command{Verb: VerbHelp}, nil
	}
	var c Command
	switch v := strings.ToLower(words[0]); v {
	case "join":
		c.Verb = VerbJoin
	case "leave", "unjoin":
		c.Verb = VerbLeave
	case "status":
		c.Verb = VerbStatus
	case "help", "-h", "--help":
		return Command{Verb: VerbHelp}, nil
	default:
		return Command{}, usageErrorf("Unknown subcommand %q.", shorten(words[0]))
	}
	var ref []string
	for _, w := range words[1:] {
		// Slack's editor may turn "--" into an en or em dash.
		flag := strings.TrimLeft(w, "-\u2013\u2014")
		if flag == w {
			ref = append(ref, w)
			continue
		}
		switch strings.ToLower(flag) {
		case "force", "f":
			c.Force = true
		default:
			return Command{}, usageErrorf("Unknown option %q: the only option is --force.", shorten(w))
		}
	}
	if c.Force && c.Verb == VerbStatus {
		return Command{}, usageErrorf("--force applies to join and leave, not status.")
	}
	c.Instance = unquote(strings.Join(ref, " "))
	if c.Instance == "" {
		return Command{}, usageErrorf("Say which instance: `/domain %s <instance id or Name>`.", c.Verb)
	}
	if utf8.RuneCountInString(c.Instance) > maxRef {
		return Command{}, usageErrorf("The instance name is longer than %d characters.", maxRef)
	}
	for _, r := range c.Instance {
		if unicode.IsControl(r) {
			return Command{}, usageErrorf("The instance name contains a control character.")
		}
	}
	return c, nil
}

func usageErrorf(format string, args ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, args...) + "\n" + Usage}
}

// unquote removes one pair of matching straight or curly quotes.
func unquote(s string) string {
	pairs := [][2]string{{`"`, `"`}, {`'`, `'`}, {"\u201c", "\u201d"}, {"\u2018", "\u2019"}}
	for _, p := range pairs {
		if len(s) >= len(p[0])+len(p[1]) && strings.HasPrefix(s, p[0]) && strings.HasSuffix(s, p[1]) {
			return strings.TrimSpace(s[len(p[0]) : len(s)-len(p[1])])
		}
	}
	return s
}

// shorten bounds user text echoed back in an error.
func shorten(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max]) + "..."
}
