package awsgrant

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
)

// confirmBackoff is the first pause between two confirmation listings in
// TerminateSessions; it doubles up to maxConfirmBackoff. SSM reports no
// event when a session ends, so listing again is the only signal there is.
const (
	confirmBackoff    = 250 * time.Millisecond
	maxConfirmBackoff = 2 * time.Second
)

// TerminateSessions ends every Active SSM session owned by g's role session
// (arn:aws:sts::<account>:assumed-role/<role>/<request id>), whichever
// instance it is on: DescribeSessions (State=Active, Owner filter, every
// page), TerminateSession for each, then DescribeSessions again until none
// is left. ECS Exec sessions are SSM sessions like any other (their target
// is "ecs:<cluster>_<task id>_<runtime id>"), so one listing covers both.
// Sessions still listed after [Options.ConfirmWait] make an error naming
// them, returned with the sessions confirmed ended. A grant that never got
// a role (its Issue never ran) has no sessions: nil, nil.
func (g *Granter) TerminateSessions(ctx context.Context, gr access.Grant) ([]access.Session, error) {
	if gr.RoleARN == "" {
		return nil, nil
	}
	role, err := parseRoleARN(gr.RoleARN)
	if err != nil {
		return nil, bot.Permanent(fmt.Errorf("terminate sessions of %s: %w", gr.RequestID, err))
	}
	if !validSessionName(gr.RequestID) {
		return nil, bot.Permanent(fmt.Errorf("terminate sessions: request id %q is not a role session name", gr.RequestID))
	}
	owner := role.sessionARN(gr.RequestID)

	deadline := g.opts.Now().Add(g.opts.ConfirmWait)
	terminated := map[string]ssmSession{}
	pause := confirmBackoff
	active, err := g.activeSessions(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("terminate sessions of %s: %w", gr.RequestID, err)
	}
	for len(active) > 0 {
		for _, s := range active {
			if _, done := terminated[s.id]; done && s.status == ssmtypes.SessionStatusTerminating {
				continue // already on its way out
			}
			if _, err := g.ssm.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(s.id)}); err != nil {
				return ended(terminated, active), classify(fmt.Sprintf("terminate session %s of %s", s.id, gr.RequestID), err)
			}
			if _, done := terminated[s.id]; !done {
				g.opts.Logger.InfoContext(ctx, "terminated SSM session", "request", gr.RequestID, "session", s.id, "target", s.target)
			}
			terminated[s.id] = s
		}
		if active, err = g.activeSessions(ctx, owner); err != nil {
			return ended(terminated, nil), fmt.Errorf("terminate sessions of %s: confirm: %w", gr.RequestID, err)
		}
		if len(active) == 0 {
			break
		}
		if !g.opts.Now().Add(pause).Before(deadline) {
			ids := make([]string, 0, len(active))
			for _, s := range active {
				ids = append(ids, s.id+" ("+string(s.status)+" on "+s.target+")")
			}
			return ended(terminated, active), fmt.Errorf("terminate sessions of %s: %d still active after TerminateSession: %s",
				gr.RequestID, len(active), strings.Join(ids, ", "))
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ended(terminated, active), fmt.Errorf("terminate sessions of %s: %w", gr.RequestID, context.Cause(ctx))
		}
		pause = min(2*pause, maxConfirmBackoff)
	}
	return ended(terminated, nil), nil
}

// ssmSession is what TerminateSessions needs of a listed session.
type ssmSession struct {
	id, target string
	status     ssmtypes.SessionStatus
}

// ended lists the terminated sessions that are no longer listed active,
// ordered by id so the trail reads the same on every run.
func ended(terminated map[string]ssmSession, active []ssmSession) []access.Session {
	var out []access.Session
	for id, s := range terminated {
		if !slices.ContainsFunc(active, func(a ssmSession) bool { return a.id == id }) {
			out = append(out, access.Session{ID: id, Target: s.target})
		}
	}
	slices.SortFunc(out, func(a, b access.Session) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// activeSessions lists every Active session owned by owner.
func (g *Granter) activeSessions(ctx context.Context, owner string) ([]ssmSession, error) {
	p := ssm.NewDescribeSessionsPaginator(g.ssm, &ssm.DescribeSessionsInput{
		State:      ssmtypes.SessionStateActive,
		MaxResults: aws.Int32(200),
		Filters:    []ssmtypes.SessionFilter{{Key: ssmtypes.SessionFilterKeyOwner, Value: aws.String(owner)}},
	})
	var out []ssmSession
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify("describe sessions", err)
		}
		for _, s := range page.Sessions {
			// The filter already selects the owner; checking again
			// guards against ever terminating someone else's session.
			if aws.ToString(s.Owner) != owner {
				continue
			}
			out = append(out, ssmSession{id: aws.ToString(s.SessionId), target: aws.ToString(s.Target), status: s.Status})
		}
	}
	return out, nil
}
