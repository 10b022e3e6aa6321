package access

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokken/tokken/bot"
)

// Verb is what an /access command asks for.
type Verb string

// Verbs of the /access command.
const (
	VerbModal   Verb = "modal"   // `/access`: open the request modal
	VerbHelp    Verb = "help"    // `/access help`
	VerbList    Verb = "list"    // `/access list`: my pending and active requests
	VerbRevoke  Verb = "revoke"  // `/access revoke r-… [reason]`
	VerbCreds   Verb = "creds"   // `/access creds r-…`: new credentials for an active grant
	VerbRequest Verb = "request" // `/access <profile> <duration> [i-… …] <reason…>`
)

// Command is a parsed /access command. Profile validity and the profile's
// maximum duration are not checked here: Submit checks them against the
// catalogue and the user's permissions.
type Command struct {
	Verb      Verb
	RequestID string        // VerbRevoke, VerbCreds
	Profile   string        // VerbRequest
	Duration  time.Duration // VerbRequest
	Instances []string      // VerbRequest, in the order given, without duplicates
	Reason    string        // VerbRequest (required), VerbRevoke (optional)
	// BreakGlass is VerbRequest with BreakGlassFlag: file it as
	// break-glass (the UI asks the requester to confirm first).
	BreakGlass bool
}

// BreakGlassFlag asks for a one-line request to be filed as break-glass:
// `/access --break-glass prod-ssm 30m i-… db down`. It may stand anywhere
// before the reason; the em and en dashes some keyboards turn "--" into are
// accepted too.
const BreakGlassFlag = "--break-glass"

// isBreakGlassFlag reports whether word is BreakGlassFlag as typed,
// possibly with "--" autocorrected into a dash.
func isBreakGlassFlag(word string) bool {
	w := strings.ToLower(word)
	for _, dash := range []string{"--", "—", "–", "-"} {
		if rest, ok := strings.CutPrefix(w, dash); ok && rest == "break-glass" {
			return true
		}
	}
	return false
}

// Limits of the one-line command.
const (
	MaxCommandDuration = 24 * time.Hour
	// MaxReasonChars bounds every reason (request, deny, break-glass,
	// extend, revoke) in characters as the user sees them (runes), the unit
	// of the modals' max_length too.
	MaxReasonChars  = 500
	MaxInstances    = 20
	maxProfileChars = 64
)

// CommandError is a user-facing parse error: what was wrong and what is
// allowed. Its Error text is meant for an ephemeral Slack answer.
type CommandError struct{ Msg string }

func (e *CommandError) Error() string { return e.Msg }

var (
	profileRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`) })
	durationRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:(\d{1,4})h)?(?:(\d{1,5})m)?$`) })
)

// ValidRequestID reports whether s looks like a request id (bot.NewID("r-")):
// "r-" and 12 lowercase letters or digits.
func ValidRequestID(s string) bool {
	rest, ok := strings.CutPrefix(s, "r-")
	return ok && len(rest) == 12 && strings.Trim(rest, "0123456789abcdefghijklmnopqrstuvwxyz") == ""
}

// looksLikeDuration reports whether s starts like a number (a digit, a
// sign or a dot): a word that does not is a missing duration, not a wrong
// one.
func looksLikeDuration(s string) bool { return s != "" && strings.ContainsAny(s[:1], "-+.0123456789") }

// ParseDuration parses a duration written like 10m, 1h, 1h30m or 90m:
// whole hours and/or minutes, more than zero, at most 24h.
func ParseDuration(s string) (time.Duration, error) {
	m := durationRE().FindStringSubmatch(s)
	if m == nil || s == "" {
		return 0, &CommandError{Msg: msgBadDuration(s)}
	}
	h, _ := strconv.Atoi(m[1]) // at most 4 digits: cannot fail or overflow
	mins, _ := strconv.Atoi(m[2])
	d := time.Duration(h)*time.Hour + time.Duration(mins)*time.Minute
	switch {
	case d <= 0:
		return 0, &CommandError{Msg: msgZeroDuration(s)}
	case d > MaxCommandDuration:
		return 0, &CommandError{Msg: msgDurationOverDay(s)}
	}
	return d, nil
}

// ParseCommand parses the text of an /access slash command (what Slack sends
// as `text`). It never panics; every error is a *CommandError whose text
// says what was wrong and what is allowed.
func ParseCommand(text string) (Command, error) {
	f := strings.Fields(text)
	if len(f) == 0 {
		return Command{Verb: VerbModal}, nil
	}
	if isBreakGlassFlag(f[0]) {
		c, err := parseRequest(f[1:])
		if err != nil {
			return Command{}, err
		}
		c.BreakGlass = true
		return c, nil
	}
	switch strings.ToLower(f[0]) {
	case "help", "-h", "--help":
		if len(f) > 1 {
			return Command{}, &CommandError{Msg: msgExtraArgs("help")}
		}
		return Command{Verb: VerbHelp}, nil
	case "list":
		if len(f) > 1 {
			return Command{}, &CommandError{Msg: msgExtraArgs("list")}
		}
		return Command{Verb: VerbList}, nil
	case "revoke":
		if len(f) < 2 {
			return Command{}, &CommandError{Msg: msgRevokeUsage}
		}
		id := strings.ToLower(f[1])
		if !ValidRequestID(id) {
			return Command{}, &CommandError{Msg: msgBadRequestID(f[1])}
		}
		return Command{Verb: VerbRevoke, RequestID: id, Reason: strings.Join(f[2:], " ")}, nil
	case "creds":
		if len(f) != 2 {
			return Command{}, &CommandError{Msg: msgCredsUsage}
		}
		id := strings.ToLower(f[1])
		if !ValidRequestID(id) {
			return Command{}, &CommandError{Msg: msgBadRequestID(f[1])}
		}
		return Command{Verb: VerbCreds, RequestID: id}, nil
	}
	return parseRequest(f)
}

// parseRequest parses the words of a one-line request; BreakGlassFlag may
// stand between them before the reason begins.
func parseRequest(f []string) (Command, error) {
	if len(f) == 0 {
		return Command{}, &CommandError{Msg: msgBreakGlassUsage}
	}
	var c Command
	// The flag may follow the profile, the duration or the instances, or
	// end the line; elsewhere it is part of the reason.
	reasonAt := 2 + countInstanceWords(f[min(2, len(f)):])
	for i := 1; i < len(f); i++ {
		if isBreakGlassFlag(f[i]) && (i <= reasonAt || i == len(f)-1) {
			c.BreakGlass = true
			f = append(f[:i:i], f[i+1:]...)
			break
		}
	}
	switch v := strings.ToLower(f[0]); {
	case isBreakGlassFlag(v), v == "help", v == "list", v == "revoke", v == "creds":
		return Command{}, &CommandError{Msg: msgBreakGlassUsage}
	}
	c.Verb, c.Profile = VerbRequest, f[0]
	if len(c.Profile) > maxProfileChars || !profileRE().MatchString(c.Profile) {
		return Command{}, &CommandError{Msg: msgBadProfile(f[0])}
	}
	if len(f) < 2 {
		return Command{}, &CommandError{Msg: msgMissingDuration(c.Profile)}
	}
	if !looksLikeDuration(f[1]) {
		return Command{}, &CommandError{Msg: msgMissingDuration(c.Profile)}
	}
	d, err := ParseDuration(strings.ToLower(f[1]))
	if err != nil {
		return Command{}, err
	}
	c.Duration = d
	rest := f[2:]
	for len(rest) > 0 && strings.HasPrefix(strings.ToLower(rest[0]), "i-") {
		for _, id := range strings.Split(rest[0], ",") {
			if id == "" {
				continue
			}
			id = strings.ToLower(id)
			if !bot.IsInstanceID(id) {
				return Command{}, &CommandError{Msg: msgBadInstance(id)}
			}
			if !slices.Contains(c.Instances, id) {
				c.Instances = append(c.Instances, id)
			}
		}
		rest = rest[1:]
	}
	if len(c.Instances) > MaxInstances {
		return Command{}, &CommandError{Msg: msgTooManyInstances(len(c.Instances))}
	}
	c.Reason = strings.Join(rest, " ")
	if c.Reason == "" {
		return Command{}, &CommandError{Msg: msgMissingReason}
	}
	if msg := ReasonTooLong(c.Reason); msg != "" {
		return Command{}, &CommandError{Msg: msg}
	}
	return c, nil
}

// countInstanceWords counts the leading words of f that are instance ids
// (or look like them), where a one-line request lists its instances.
func countInstanceWords(f []string) int {
	n := 0
	for n < len(f) && strings.HasPrefix(strings.ToLower(f[n]), "i-") {
		n++
	}
	return n
}
