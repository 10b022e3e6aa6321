package domainjoin

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tokken/tokken/bot"
)

// UserError is a refusal meant for the person who typed the command: it
// says what was wrong and what is allowed. Service replies with its text
// instead of failing the job.
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

func userErrorf(format string, args ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, args...)}
}

// AsUserError returns the *UserError in err's chain, if any.
func AsUserError(err error) (*UserError, bool) {
	var u *UserError
	ok := errors.As(err, &u)
	return u, ok
}

// maxCandidates bounds the list shown for an ambiguous name.
const maxCandidates = 10

// Resolve picks the one instance ref means among the candidates Instances.Find
// returned. An id must match exactly. A name may match several instances:
// terminated ones are set aside when a live one carries the name (names are
// reused after termination); if several live ones remain the refusal lists
// them so the user can pick an id.
func Resolve(ref string, candidates []Instance) (Instance, error) {
	if len(candidates) == 0 {
		if bot.IsInstanceID(ref) {
			return Instance{}, userErrorf("No instance %s in this account and region.", ref)
		}
		return Instance{}, userErrorf("No instance is named %q. Use the instance id (i-...) or the exact Name tag.", ref)
	}
	if bot.IsInstanceID(ref) {
		for _, c := range candidates {
			if c.ID == ref {
				return c, nil
			}
		}
		return Instance{}, userErrorf("No instance %s in this account and region.", ref)
	}
	var live []Instance
	for _, c := range candidates {
		if !c.Gone() {
			live = append(live, c)
		}
	}
	switch {
	case len(live) == 1:
		return live[0], nil
	case len(live) == 0 && len(candidates) == 1:
		return candidates[0], nil // Validate says it is terminated
	case len(live) == 0:
		live = candidates
	}
	slices.SortFunc(live, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
	var b strings.Builder
	fmt.Fprintf(&b, "%d instances are named %q; say which one by id:", len(live), ref)
	for i, c := range live {
		if i == maxCandidates {
			fmt.Fprintf(&b, "\n- ... and %d more", len(live)-maxCandidates)
			break
		}
		fmt.Fprintf(&b, "\n- %s (%s)", c.ID, orUnknown(c.State))
	}
	return Instance{}, &UserError{Msg: b.String()}
}
