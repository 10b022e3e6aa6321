package access

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tokken/tokken/bot"
)

// The worker re-derives every grant before it calls STS.
//
// The ingress (the internet-facing half) may write any request item and
// send any job, so the worker never trusts a stored "activating" state, a
// stored approval count or an "approved" extension. Before it issues
// credentials, verifyGrant (and verifyExtension for more time) checks,
// from the request's own record and the catalogue and policy in force now:
//
//   - the profile still exists and the request asks for exactly its role,
//     kind and session policy, for no longer than its maximum, on instances
//     that exist and that its selector allows (looked up again);
//   - the requester may still request it (and, for break-glass, the profile
//     allows break-glass and the requester may break glass);
//   - otherwise, enough distinct approvers approved it: never the requester,
//     each approval recorded in the history, at a sane time, and each
//     approver permitted to approve this request now. How many are needed is
//     the most of what was shown to approvers, the catalogue's number and
//     the policy's @approvals, all as they are now.
//
// A request that fails is refused: it fails with the reason on its card, an
// access.refused audit line and an ops alert, and STS is never called.
//
// The same counting runs on the ingress when an approval would complete a
// quorum (countApprovals), so an approver who lost the right to approve
// after clicking no longer counts and the request waits for another
// approval instead of failing at the worker.

// ErrUnknownUser is what a Directory wraps when a Slack user does not
// exist, was deactivated or is a bot: such a user is no principal, and an
// approval by them does not count.
var ErrUnknownUser = errors.New("not an active Slack user")

// refusal says why a grant may not be issued; it is shown on the card, in
// the audit line and in the ops alert.
type refusal struct{ why string }

func (e *refusal) Error() string { return "refused: " + e.why }

func refuse(format string, args ...any) error { return &refusal{why: fmt.Sprintf(format, args...)} }

// clockSkew is how far the clocks of tokken's processes (the ingress that
// recorded an approval, the worker that checks it) may disagree.
const clockSkew = time.Minute

// lapse is an approval that does not count, and why.
type lapse struct {
	by, why string
}

// approvalTally is the outcome of counting approvals against the policy in
// force.
type approvalTally struct {
	counted []string
	lapsed  []lapse
}

func (t approvalTally) explain() string {
	var parts []string
	for _, l := range t.lapsed {
		parts = append(parts, fmt.Sprintf("the approval by %s does not count (%s)", l.by, l.why))
	}
	return strings.Join(parts, "; ")
}

// countApprovals decides, approval by approval, which of approvals count
// for request r now: distinct approvers other than the requester, each
// permitted by the policy in force to approve r for duration d, each with
// its ActApproved history row (whose Note is note: "" for the request,
// "extension <id>" for an extension) and a time between the request's
// creation and now (give or take clockSkew between processes). Errors are
// failures to ask (the directory, the policy), not refusals.
func (s *Service) countApprovals(ctx context.Context, r *Request, approvals []Approval, d time.Duration, note string) (approvalTally, error) {
	var t approvalTally
	now := s.now()
	seen := map[string]bool{}
	for _, a := range approvals {
		switch {
		case a.By == "" || a.By == System:
			t.lapsed = append(t.lapsed, lapse{a.By, "no approver recorded"})
			continue
		case a.By == r.Requester:
			t.lapsed = append(t.lapsed, lapse{a.By, "the requester cannot approve their own request"})
			continue
		case seen[a.By]:
			t.lapsed = append(t.lapsed, lapse{a.By, "already counted once"})
			continue
		case a.At.Before(r.Created.Add(-clockSkew)) || a.At.After(now.Add(clockSkew)):
			t.lapsed = append(t.lapsed, lapse{a.By, "recorded at an impossible time"})
			continue
		case !slices.ContainsFunc(r.History, func(h HistoryRow) bool {
			return h.Action == ActApproved && h.Actor == a.By && h.Note == note && h.At.Equal(a.At)
		}):
			t.lapsed = append(t.lapsed, lapse{a.By, "not in the request's history"})
			continue
		}
		seen[a.By] = true
		who, err := s.dir.Lookup(ctx, a.By)
		if errors.Is(err, ErrUnknownUser) {
			t.lapsed = append(t.lapsed, lapse{a.By, "no longer an active Slack user"})
			continue
		}
		if err != nil {
			return t, fmt.Errorf("look up approver %s: %w", a.By, err)
		}
		_, err = s.authorize(ctx, who, bot.ActionApprove, r, d, nil)
		var denied *ErrNotAllowed
		if errors.As(err, &denied) {
			t.lapsed = append(t.lapsed, lapse{a.By, "no longer permitted to approve it"})
			continue
		}
		if err != nil {
			return t, err
		}
		t.counted = append(t.counted, a.By)
	}
	return t, nil
}

// requesterDecision checks that r's requester, as the directory and the
// policy know them now, may do a (request, break_glass, extend) for d, with
// extra context, and returns the policy's decision. The time the rules see
// is at, when the requester did it: a rule about when requests may be made
// (working hours) judges the request, not the moment the last approver
// clicked. A refusal is a *refusal.
func (s *Service) requesterDecision(ctx context.Context, r *Request, a bot.Action, d time.Duration, extra map[string]string, at time.Time) (bot.Decision, error) {
	who, err := s.dir.Lookup(ctx, r.Requester)
	if errors.Is(err, ErrUnknownUser) {
		return bot.Decision{}, refuse("the requester %s is no longer an active Slack user", r.Requester)
	}
	if err != nil {
		return bot.Decision{}, fmt.Errorf("look up requester %s: %w", r.Requester, err)
	}
	c := map[string]string{"requester": r.Requester}
	if r.IDC != nil {
		c["account"] = r.IDC.Account
	}
	maps.Copy(c, extra)
	dec, err := s.authz.Authorize(ctx, bot.AuthzQuery{
		Principal: who, Action: a, Profile: r.Profile, Duration: d, Targets: r.Targets, Now: at, Context: c,
	})
	if err != nil {
		return dec, fmt.Errorf("authorize %s on %s: %w", a, r.ID, err)
	}
	if !dec.Allow {
		return dec, refuse("the requester may no longer %s this (%s)", actionWords(string(a)), strings.Join(dec.Reasons, "; "))
	}
	return dec, nil
}

// verifyGrant re-derives that r may be granted now (see the comment at the
// top of this file). It returns a *refusal when it may not, another error
// when it could not tell (the caller retries), and nil when it may.
func (s *Service) verifyGrant(ctx context.Context, r *Request) error {
	p, ok := s.cat.Profile(r.Profile)
	switch {
	case !ok:
		return refuse("profile %s no longer exists", r.Profile)
	case r.Kind != p.Kind || r.RoleARN != p.RoleARN || r.SessionPolicy != p.SessionPolicy:
		return refuse("the request's role or session policy is not profile %s's as it is now", r.Profile)
	case r.Duration <= 0 || r.Duration > p.MaxDuration:
		return refuse("%s is not within profile %s's maximum of %s", FormatDuration(r.Duration), r.Profile, FormatDuration(p.MaxDuration))
	}
	ids := make([]string, 0, len(r.Targets))
	for _, t := range r.Targets {
		ids = append(ids, t.ID)
	}
	targets, err := s.targets(ctx, p, ids)
	var bad *ErrBadTarget
	if errors.As(err, &bad) {
		return refuse("%s", bad.Error())
	}
	if err != nil {
		return err
	}
	// Decide on the instances as they are now, not on the tags recorded.
	now := *r
	now.Targets = targets
	if p.Kind == KindECSExec {
		if err := s.verifyECSTarget(ctx, p, r); err != nil {
			return err
		}
	}
	if p.Kind == KindIdentityCenter {
		if err := verifyIDCTarget(p, r); err != nil {
			return err
		}
		if err := s.verifyIDCFinding(ctx, r); err != nil {
			return err
		}
	}
	if r.BreakGlass != nil {
		if !p.BreakGlass {
			return refuse("profile %s does not allow break-glass", r.Profile)
		}
		if !slices.ContainsFunc(r.History, func(h HistoryRow) bool { return h.Action == ActBreakGlass && h.Actor == r.Requester }) {
			return refuse("the break-glass is not in the request's history")
		}
		bg := map[string]string{"break_glass": "true"}
		if _, err := s.requesterDecision(ctx, &now, bot.ActionRequest, r.Duration, bg, r.BreakGlass.At); err != nil {
			return err
		}
		_, err := s.requesterDecision(ctx, &now, bot.ActionBreakGlass, r.Duration, bg, r.BreakGlass.At)
		return err
	}
	dec, err := s.requesterDecision(ctx, &now, bot.ActionRequest, r.Duration, nil, r.Created)
	if err != nil {
		return err
	}
	needed := max(r.ApprovalsNeeded, p.Approvals, dec.Approvals)
	if needed <= 0 {
		return nil
	}
	t, err := s.countApprovals(ctx, &now, r.Approvals, r.Duration, "")
	if err != nil {
		return err
	}
	if len(t.counted) < needed {
		return refuse("%d of the %d approvals needed count%s", len(t.counted), needed, prefixed(": ", t.explain()))
	}
	return nil
}

// verifyExtension re-derives that extension x of active request r may be
// issued now: the grant itself still passes verifyGrant, its window is
// what activation and the applied extensions made it, the requester may
// extend by x.Duration, and the extension has enough distinct approvers
// permitted now (as many as the request needs, or the policy's @approvals
// for the extension if more).
func (s *Service) verifyExtension(ctx context.Context, r *Request, x *Extension) error {
	if err := s.verifyGrant(ctx, r); err != nil {
		return err
	}
	p, _ := s.cat.Profile(r.Profile) // verifyGrant checked it exists
	if x.Duration <= 0 || x.Duration > p.MaxDuration {
		return refuse("the extension's %s is not within profile %s's maximum of %s", FormatDuration(x.Duration), r.Profile, FormatDuration(p.MaxDuration))
	}
	if err := verifyWindow(r, s.now()); err != nil {
		return err
	}
	switch {
	case !x.NewExpiresAt.Equal(r.Window.ExpiresAt.Add(x.Duration)):
		return refuse("the extension's end is not the window end plus %s", FormatDuration(x.Duration))
	case !slices.ContainsFunc(r.History, func(h HistoryRow) bool {
		return h.Action == ActExtendRequested && h.Actor == r.Requester && h.At.Equal(x.Requested)
	}):
		return refuse("the extension is not in the request's history")
	}
	dec, err := s.requesterDecision(ctx, r, bot.ActionExtend, x.Duration, nil, x.Requested)
	if err != nil {
		return err
	}
	needed := max(r.ApprovalsNeeded, p.Approvals, dec.Approvals)
	if needed <= 0 {
		return nil
	}
	t, err := s.countApprovals(ctx, r, x.Approvals, x.Duration, "extension "+x.ID)
	if err != nil {
		return err
	}
	if len(t.counted) < needed {
		return refuse("%d of the %d approvals the extension needs count%s", len(t.counted), needed, prefixed(": ", t.explain()))
	}
	return nil
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// verifyECSTarget re-derives an ecs-exec request's target from ECS and the
// profile as they are now: the session policy is built from r.ECS, so a
// stored target the profile would not give (another cluster, service,
// task, containers or tags) is refused.
func (s *Service) verifyECSTarget(ctx context.Context, p Profile, r *Request) error {
	if r.ECS == nil {
		return refuse("the request names no ECS service or task")
	}
	ref := r.ECS.Service
	if r.ECS.ByTask {
		ref = r.ECS.Task
	}
	fresh, err := s.ecsTarget(ctx, p, ref)
	var bad *ErrBadTarget
	if errors.As(err, &bad) {
		return refuse("%s", bad.Error())
	}
	if err != nil {
		return err
	}
	same := fresh.Cluster == r.ECS.Cluster && fresh.Service == r.ECS.Service && fresh.ByTask == r.ECS.ByTask &&
		slices.Equal(fresh.Containers, r.ECS.Containers) && maps.Equal(fresh.Tags, r.ECS.Tags) &&
		(!r.ECS.ByTask || fresh.Task == r.ECS.Task)
	if !same {
		return refuse("the request's ECS target (%s) is not one profile %s gives now", r.ECS.Describe(), r.Profile)
	}
	return nil
}

// verifyIDCTarget checks an identity-center request against its profile as
// it is now: an account the profile offers, and the profile's permission
// set, group and instance.
func verifyIDCTarget(p Profile, r *Request) error {
	g := r.IDC
	switch {
	case g == nil:
		return refuse("the request names no account")
	case !slices.Contains(p.IDC.Accounts, g.Account):
		return refuse("account %s is not one profile %s gives now", g.Account, r.Profile)
	case g.PermissionSet != p.IDC.PermissionSet || g.Group != p.IDC.Group || g.InstanceARN != p.IDC.InstanceARN:
		return refuse("the request's permission set or group is not profile %s's as it is now", r.Profile)
	}
	return nil
}

// verifyIDCFinding re-derives what an earlier activation attempt recorded
// of an identity-center grant (IDCGrant.Checked), which activation then
// grants without looking again: the requester's Identity Store user, the
// permission set's ARN and the group's id, as Identity Center gives them
// for the request now. So a recorded finding cannot make tokken assign
// another principal or another permission set. (Whether the access
// existed before tokken granted it only the record says.)
func (s *Service) verifyIDCFinding(ctx context.Context, r *Request) error {
	g := r.IDC
	if !g.Checked || s.idc == nil {
		return nil
	}
	_, userID, err := s.idcUser(ctx, r.Requester)
	var nouser *ErrNoIdentityUser
	switch {
	case errors.As(err, &nouser), errors.Is(err, errNoEmail):
		return refuse("the requester has no IAM Identity Center user now: %s", err.Error())
	case err != nil:
		return err
	}
	ps, err := s.idc.PermissionSet(ctx, g.PermissionSet)
	if err != nil {
		return fmt.Errorf("describe permission set %s: %w", g.PermissionSet, err)
	}
	var groupID string
	if g.ByGroup() {
		if groupID, err = s.idc.GroupID(ctx, g.Group); err != nil {
			return fmt.Errorf("find group %s: %w", g.Group, err)
		}
	}
	if userID != g.UserID || ps.ARN != g.PermissionSetARN || groupID != g.GroupID {
		return refuse("the Identity Center user, permission set or group recorded for the request is not what Identity Center gives for it now")
	}
	return nil
}
