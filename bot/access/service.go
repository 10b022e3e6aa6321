package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tokken/tokken/bot"
)

// Store kinds owned by this package.
const (
	// KindRequest holds Requests by id.
	KindRequest = "access.request"
	// KindOpen indexes the requests that are not final, keyed
	// "<requester>/<request id>": List reads a user's prefix, Sweep reads it
	// all, so neither scans the whole history.
	KindOpen = "access.open"
)

// Job kinds handled by Service (see Register).
const (
	JobActivate = "access.activate" // issue the grant of an activating request
	JobExtend   = "access.extend"   // apply an approved extension
	JobExpire   = "access.expire"   // the expiry timer fired
	JobEnd      = "access.end"      // terminate sessions and revoke (after revoke / done)
	// JobNotify retries a Slack update that failed for a reason retrying
	// can help (see Notify).
	JobNotify = "access.notify"
)

// Timing of the lifecycle.
const (
	// MaxActivateAttempts is how many failed attempts at issuing a grant
	// fail the request.
	MaxActivateAttempts = 3
	// MaxEndAttempts is how many failed attempts at ending access make the
	// request revoke_failed (the sweep keeps trying after that).
	MaxEndAttempts = 3
	// ActivationDeadline fails a request still activating this long after
	// approval.
	ActivationDeadline = 15 * time.Minute
	// PendingTimeout cancels a request nobody decided on.
	PendingTimeout = 24 * time.Hour
	// retryQuiet is how long the sweep leaves work alone after an attempt,
	// so that it does not race the job that is doing it.
	retryQuiet = time.Minute
)

// Deps are the Service's collaborators. All are required except Inventory,
// Clock, Logger and Partition.
type Deps struct {
	Store      bot.Store
	Queue      bot.Queue
	Timers     bot.Timers
	Auditor    bot.Auditor
	Authorizer bot.Authorizer
	Catalogue  Catalogue
	Granter    Granter
	Notifier   Notifier
	Directory  Directory
	// Inventory resolves instance tags; without it, targets carry no tags
	// and only id selectors can match.
	Inventory Inventory
	// ECS looks up the tasks of ecs-exec requests; without it, ecs-exec
	// requests are refused.
	ECS ECSInventory
	// IdentityCenter grants identity-center profiles (the worker's), on
	// the one instance it is configured with; without it their activation
	// fails saying so. PortalURL is the AWS access portal start URL the
	// requester's DM links to ("" for no link).
	IdentityCenter IdentityCenter
	PortalURL      string
	// IdentityUsers maps Slack users to Identity Center users where their
	// Slack e-mail is not how Identity Center knows them (groups.yaml's
	// identity_center_users); without it, the Slack e-mail is used.
	IdentityUsers IdentityUsers
	Clock         func() time.Time // default time.Now
	Logger        *slog.Logger     // default slog.Default()
	Partition     string           // ARN partition, default "aws"
	// Protected are the ARNs (IAM wildcards allowed) of tokken's own
	// resources; every grant's session policy denies every action on them.
	Protected []string
}

// Service runs the access-request lifecycle. Every user action is a method;
// the slow steps (issuing, ending, extending) are jobs it registers on a
// JobMux. All state changes are conditional writes through bot.Table.Update,
// so concurrent clicks, retried jobs and several processes agree. It is safe
// for concurrent use.
type Service struct {
	requests bot.Table[Request]
	open     bot.Table[openEntry]
	helds    bot.Table[Held] // written by the worker alone (held.go)
	queue    bot.Queue
	timers   bot.Timers
	auditor  bot.Auditor
	authz    bot.Authorizer
	cat      Catalogue
	granter  Granter
	notifier Notifier
	dir      Directory
	inv      Inventory
	ecs      ECSInventory
	idc      IdentityCenter
	idcUsers IdentityUsers
	// portal: see Deps.PortalURL.
	portal    string
	now       func() time.Time
	log       *slog.Logger
	partition string
	protected []string
	// renewEvery is how often a claim holder renews its lease
	// (claimRenewEvery; tests shorten it).
	renewEvery time.Duration
}

type openEntry struct {
	ID        string    `json:"id"`
	Requester string    `json:"requester"`
	Created   time.Time `json:"created"`
}

type jobRef struct {
	RequestID   string `json:"request_id"`
	ExtensionID string `json:"extension_id,omitempty"`
	// Tell is the action a JobNotify tells the requester about again; ""
	// re-renders the approver message.
	Tell string `json:"tell,omitempty"`
	// By asked for new credentials at Asked (JobReissue).
	By    string    `json:"by,omitempty"`
	Asked time.Time `json:"asked,omitzero"`
}

// New checks d and returns a Service.
func New(d Deps) (*Service, error) {
	var missing []string
	for name, ok := range map[string]bool{
		"Store": d.Store != nil, "Queue": d.Queue != nil, "Timers": d.Timers != nil,
		"Auditor": d.Auditor != nil, "Authorizer": d.Authorizer != nil, "Catalogue": d.Catalogue != nil,
		"Granter": d.Granter != nil, "Notifier": d.Notifier != nil, "Directory": d.Directory != nil,
	} {
		if !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("access: missing dependencies: %s", strings.Join(missing, ", "))
	}
	s := &Service{
		requests: bot.Table[Request]{Store: d.Store, Kind: KindRequest},
		open:     bot.Table[openEntry]{Store: d.Store, Kind: KindOpen},
		helds:    bot.Table[Held]{Store: d.Store, Kind: KindHeld},
		queue:    d.Queue, timers: d.Timers, auditor: d.Auditor, authz: d.Authorizer,
		cat: d.Catalogue, granter: d.Granter, notifier: d.Notifier, dir: d.Directory, inv: d.Inventory, ecs: d.ECS,
		idc: d.IdentityCenter, idcUsers: d.IdentityUsers, portal: d.PortalURL,
		now: d.Clock, log: d.Logger, partition: d.Partition, protected: slices.Clone(d.Protected), renewEvery: claimRenewEvery,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// Register adds the Service's job handlers to m.
func (s *Service) Register(m *bot.JobMux) {
	m.Handle(JobActivate, s.jobHandler(func(ctx context.Context, r jobRef) error { return s.Activate(ctx, r.RequestID) }))
	m.Handle(JobExtend, s.jobHandler(func(ctx context.Context, r jobRef) error {
		return s.ApplyExtension(ctx, r.RequestID, r.ExtensionID)
	}))
	m.Handle(JobExpire, s.jobHandler(func(ctx context.Context, r jobRef) error { return s.Expire(ctx, r.RequestID) }))
	m.Handle(JobEnd, s.jobHandler(func(ctx context.Context, r jobRef) error { return s.Finish(ctx, r.RequestID) }))
	m.Handle(JobNotify, s.jobHandler(func(ctx context.Context, r jobRef) error { return s.Notify(ctx, r.RequestID, r.Tell) }))
	m.Handle(JobReissue, s.jobHandler(func(ctx context.Context, r jobRef) error { return s.Reissue(ctx, r.RequestID, r.By, r.Asked) }))
}

func (s *Service) jobHandler(fn func(context.Context, jobRef) error) bot.JobHandler {
	return func(ctx context.Context, j bot.Job) error {
		var ref jobRef
		if err := j.Decode(&ref); err != nil {
			return err
		}
		if ref.RequestID == "" {
			return bot.Permanent(fmt.Errorf("job %s: no request id", j.ID))
		}
		err := fn(ctx, ref)
		var unknown *ErrUnknownRequest
		if errors.As(err, &unknown) {
			return bot.Permanent(err)
		}
		return err
	}
}

// Get returns the request with id, or an *ErrUnknownRequest.
func (s *Service) Get(ctx context.Context, id string) (Request, error) {
	v, err := s.requests.Get(ctx, id)
	if errors.Is(err, bot.ErrNotFound) {
		return Request{}, &ErrUnknownRequest{ID: id}
	}
	if err != nil {
		return Request{}, err
	}
	return v.Value, nil
}

// List returns user's requests that are not final (pending, activating,
// active, ending, revoke_failed), oldest first.
func (s *Service) List(ctx context.Context, user string) ([]Request, error) {
	entries, err := s.open.List(ctx, bot.PrefixRange(user+"/"), 0)
	if err != nil {
		return nil, fmt.Errorf("list requests of %s: %w", user, err)
	}
	var out []Request
	for _, e := range entries {
		r, err := s.Get(ctx, e.Value.ID)
		if errors.Is(err, bot.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list requests of %s: %w", user, err)
		}
		if !r.State.Final() {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Request) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// Requestable lists the profiles user may request (by policy, at the
// profile's default duration): the options of the request modal, and what
// an unknown-profile error offers.
func (s *Service) Requestable(ctx context.Context, user string) ([]Profile, error) {
	p, err := s.dir.Lookup(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", user, err)
	}
	return s.RequestableBy(ctx, p)
}

// RequestableBy is Requestable for a principal already looked up, so a
// caller that needs the principal for more (the break-glass profiles of
// the modal and of `/access help`) asks Slack about the user once.
func (s *Service) RequestableBy(ctx context.Context, who bot.Principal) ([]Profile, error) {
	var out []Profile
	for _, p := range s.cat.Profiles() {
		d, err := s.authz.Authorize(ctx, bot.AuthzQuery{
			Principal: who, Action: bot.ActionRequest, Profile: p.Name, Duration: p.DefaultDuration, Now: s.now(),
		})
		if err != nil {
			return nil, fmt.Errorf("authorize request of %s: %w", p.Name, err)
		}
		if d.Allow {
			out = append(out, p)
		}
	}
	return out, nil
}

// SubmitInput is what a requester asks for (from the modal or ParseCommand).
type SubmitInput struct {
	Requester string        // Slack user id
	Profile   string        // profile name
	Duration  time.Duration // 0: the profile's default
	Instances []string      // ssm profiles: instance ids
	Reason    string        // required
	Ticket    string        // optional ticket id or link
	// BreakGlass files the request as break-glass: the policy is asked
	// with context break_glass (so rules that only permit break-glass
	// requests, e.g. at night, can permit it), the requester must also be
	// allowed break_glass on a profile that allows it, and the request
	// self-approves with Reason at once.
	BreakGlass bool
	// ECSTarget is the service name or task id of an ecs-exec request;
	// when empty, the first word of Reason names it (the one-line
	// command `/access <profile> <duration> <service|task> <reason…>`).
	ECSTarget string
	// Account is the AWS account of an identity-center request; when
	// empty, a leading 12-digit account id of Reason names it, else the
	// profile's only account.
	Account string
}

// Submit validates in against the catalogue and policy and stores a pending
// request, posts it to the approver channel, and (for profiles that need no
// approval) starts activation. Errors are user-facing: ErrUnknownProfile
// (with the profiles the user may request), ErrDurationTooLong (with the
// maximum), ErrBadTarget, ErrReasonRequired, ErrNotAllowed (with the rules).
func (s *Service) Submit(ctx context.Context, in SubmitInput) (Request, error) {
	who, err := s.dir.Lookup(ctx, in.Requester)
	if err != nil {
		return Request{}, fmt.Errorf("submit: look up %s: %w", in.Requester, err)
	}
	p, ok := s.cat.Profile(in.Profile)
	if !ok {
		allowed, err := s.RequestableBy(ctx, who)
		if err != nil {
			return Request{}, fmt.Errorf("submit: %w", err)
		}
		names := make([]string, 0, len(allowed))
		for _, a := range allowed {
			names = append(names, a.Name)
		}
		return Request{}, &ErrUnknownProfile{Name: in.Profile, Allowed: names}
	}
	if p.Kind == KindECSExec && in.ECSTarget == "" {
		in.ECSTarget, in.Reason = splitECSTarget(in.Reason)
	}
	if p.Kind == KindIdentityCenter && in.Account == "" {
		in.Account, in.Reason = splitAccount(in.Reason)
	}
	reason := strings.TrimSpace(in.Reason)
	if reason == "" {
		return Request{}, ErrReasonRequired
	}
	d := in.Duration
	if d <= 0 {
		d = p.DefaultDuration
	}
	if d <= 0 || d > p.MaxDuration {
		return Request{}, &ErrDurationTooLong{Profile: p.Name, Asked: d, Max: p.MaxDuration}
	}
	targets, err := s.targets(ctx, p, in.Instances)
	if err != nil {
		return Request{}, err
	}
	var ecs *ECSTarget
	if p.Kind == KindECSExec {
		if ecs, err = s.ecsTarget(ctx, p, strings.TrimSpace(in.ECSTarget)); err != nil {
			return Request{}, err
		}
	}
	var idc *IDCGrant
	if p.Kind == KindIdentityCenter {
		if idc, err = idcTarget(p, strings.TrimSpace(in.Account)); err != nil {
			return Request{}, err
		}
	}
	now := s.now()
	r := Request{
		ID: bot.NewID("r-"), Requester: in.Requester, Profile: p.Name, Kind: p.Kind,
		RoleARN: p.RoleARN, SessionPolicy: p.SessionPolicy, Targets: targets, Duration: d,
		Reason: reason, Ticket: strings.TrimSpace(in.Ticket), Created: now, State: StatePending,
		ApprovalsNeeded: p.Approvals, ECS: ecs, IDC: idc,
	}
	var extra map[string]string
	if in.BreakGlass {
		if !p.BreakGlass {
			return Request{}, &ErrBreakGlassDisabled{Profile: p.Name}
		}
		extra = map[string]string{"break_glass": "true"}
	}
	dec, err := s.authorize(ctx, who, bot.ActionRequest, &r, d, extra)
	if err != nil {
		var denied *ErrNotAllowed
		if errors.As(err, &denied) && !in.BreakGlass && p.BreakGlass {
			// Say so when break-glass is open to them: at 3 a.m. the
			// refusal must not hide the way that works.
			if ok, berr := s.mayBreakGlass(ctx, who, &r, d); berr != nil {
				s.log.WarnContext(ctx, "access: checking break-glass for a refused request", "profile", p.Name, "err", berr)
			} else if ok {
				in.Duration = d
				denied.BreakGlass = BreakGlassCommand(in)
			}
		}
		return Request{}, err
	}
	if in.BreakGlass {
		if _, err := s.authorize(ctx, who, bot.ActionBreakGlass, &r, d, extra); err != nil {
			return Request{}, err
		}
	}
	// The catalogue's approvals are a floor; a rule (@approvals) may ask
	// for more.
	r.ApprovalsNeeded = max(r.ApprovalsNeeded, dec.Approvals)
	// Validate the grant now, so a request that could never be issued (too
	// many instances for a session policy) is refused before anyone approves.
	if _, err := NewGrantSpec(&r, now.Add(d), now, s.partition, s.protected...); err != nil && p.Kind != KindIdentityCenter {
		return Request{}, &ErrBadTarget{Profile: p.Name, Why: err.Error()}
	}
	// A role without tokken's permissions boundary is refused now, before
	// an approver spends a click on it (Issue checks again before every
	// AssumeRole).
	if err := s.checkRole(ctx, &r); err != nil {
		var ng *ErrRoleNotGrantable
		if !errors.As(err, &ng) {
			return Request{}, fmt.Errorf("submit: check role %s: %w", r.RoleARN, err)
		}
		s.log.ErrorContext(ctx, "access: refused a request for a role tokken must not grant",
			"request", r.ID, "profile", p.Name, "role", r.RoleARN, "why", ng.Why)
		if aerr := s.auditor.Record(ctx, bot.AuditEvent{
			At: now, Actor: r.Requester, Action: ActRoleRefused, Subject: r.ID, Reason: reason, Profile: p.Name,
			Detail: map[string]string{"role": r.RoleARN, "boundary": ng.Boundary, "why": ng.Why},
		}); aerr != nil {
			s.log.ErrorContext(ctx, "access: audit event not recorded", "err", aerr, "request", r.ID, "action", ActRoleRefused)
		}
		return Request{}, err
	}
	if err := s.idcCheckUser(ctx, &r); err != nil {
		return Request{}, err
	}
	r.log(now, r.Requester, ActRequested, reason)
	if in.BreakGlass {
		if err := r.SelfApprove(r.Requester, reason, now); err != nil {
			return Request{}, err
		}
	} else if r.ApprovalsNeeded <= 0 {
		r.activate(now)
	}
	if err := s.open.Create(ctx, openKey(&r), openEntry{ID: r.ID, Requester: r.Requester, Created: now}, 0); err != nil {
		return Request{}, fmt.Errorf("submit: %w", err)
	}
	if err := s.requests.Create(ctx, r.ID, r, 0); err != nil {
		return Request{}, fmt.Errorf("submit: %w", err)
	}
	s.after(ctx, r, r.History)
	if r.BreakGlass != nil {
		s.alert(ctx, Alert{Channel: AlertAudit, Action: ActBreakGlass, Request: r, Text: alertBreakGlass(&r)})
	}
	if r.State == StateActivating {
		s.enqueue(ctx, "activate/"+r.ID, JobActivate, jobRef{RequestID: r.ID})
	}
	return r, nil
}

// checkRole asks the Granter whether r's role may be granted;
// identity-center requests have no role.
func (s *Service) checkRole(ctx context.Context, r *Request) error {
	if r.Kind == KindIdentityCenter {
		return nil
	}
	return s.granter.CheckRole(ctx, r.RoleARN)
}

// Selects reports whether the selector allows target t: its id is listed,
// or it carries every tag of Tags. An empty selector allows nothing.
func (sel InstanceSelector) Selects(t bot.Target) bool {
	if slices.Contains(sel.IDs, t.ID) {
		return true
	}
	if len(sel.Tags) == 0 {
		return false
	}
	for k, v := range sel.Tags {
		if got, ok := t.Tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func (s *Service) targets(ctx context.Context, p Profile, ids []string) ([]bot.Target, error) {
	if p.Kind != KindSSM {
		if len(ids) > 0 {
			return nil, &ErrBadTarget{Profile: p.Name, Why: whyRoleNotInstances}
		}
		return nil, nil
	}
	if len(ids) == 0 {
		return nil, &ErrBadTarget{Profile: p.Name, Why: whyNeedInstances}
	}
	if len(ids) > MaxInstances {
		return nil, &ErrBadTarget{Profile: p.Name, Why: msgTooManyInstances(len(ids))}
	}
	var uniq []string
	for _, id := range ids {
		if !bot.IsInstanceID(id) {
			return nil, &ErrBadTarget{Profile: p.Name, ID: id, Why: whyNotInstanceID}
		}
		if !slices.Contains(uniq, id) {
			uniq = append(uniq, id)
		}
	}
	targets := make([]bot.Target, 0, len(uniq))
	if s.inv == nil {
		for _, id := range uniq {
			targets = append(targets, bot.Target{ID: id})
		}
	} else {
		found, err := s.inv.Instances(ctx, uniq)
		if err != nil {
			return nil, fmt.Errorf("look up instances: %w", err)
		}
		for _, id := range uniq {
			i := slices.IndexFunc(found, func(t bot.Target) bool { return t.ID == id })
			if i < 0 {
				return nil, &ErrBadTarget{Profile: p.Name, ID: id, Why: whyNoSuchInstance}
			}
			targets = append(targets, found[i])
		}
	}
	for _, t := range targets {
		if !p.Instances.Selects(t) {
			return nil, &ErrBadTarget{Profile: p.Name, ID: t.ID, Why: whyNotSelected(p.Instances)}
		}
	}
	return targets, nil
}

// authorize asks the policy whether who may do a about r; d is the duration
// in question (the request's, or an extension's). The context carries only
// attributes the policy schema declares (policies/tokken.cedarschema):
// the requester, and break_glass via extra.
func (s *Service) authorize(ctx context.Context, who bot.Principal, a bot.Action, r *Request, d time.Duration, extra map[string]string) (bot.Decision, error) {
	c := map[string]string{"requester": r.Requester}
	if r.IDC != nil {
		c["account"] = r.IDC.Account
	}
	if r.ECS != nil {
		c["ecs_service"] = r.ECS.Service
		if r.ECS.Env != "" {
			c["env"] = r.ECS.Env
		}
	}
	for k, v := range extra {
		c[k] = v
	}
	dec, err := s.authz.Authorize(ctx, bot.AuthzQuery{
		Principal: who, Action: a, Profile: r.Profile, Duration: d, Targets: r.Targets, Now: s.now(), Context: c,
	})
	if err != nil {
		return dec, fmt.Errorf("authorize %s on %s: %w", a, r.ID, err)
	}
	if !dec.Allow {
		return dec, &ErrNotAllowed{Action: a, Reasons: dec.Reasons}
	}
	return dec, nil
}

// mayBreakGlass reports whether who may file r (for d) as break-glass: the
// policy permits both request and break_glass with context break_glass.
// Whether the profile allows break-glass is the caller's check.
func (s *Service) mayBreakGlass(ctx context.Context, who bot.Principal, r *Request, d time.Duration) (bool, error) {
	extra := map[string]string{"break_glass": "true"}
	for _, a := range []bot.Action{bot.ActionRequest, bot.ActionBreakGlass} {
		_, err := s.authorize(ctx, who, a, r, d, extra)
		var denied *ErrNotAllowed
		if errors.As(err, &denied) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// actor looks up user and checks they may do a on request id; it returns
// the request as read.
func (s *Service) actor(ctx context.Context, user string, a bot.Action, id string, d time.Duration, extra map[string]string) (Request, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	who, err := s.dir.Lookup(ctx, user)
	if err != nil {
		return Request{}, fmt.Errorf("%s %s: look up %s: %w", a, id, user, err)
	}
	if d == 0 {
		d = r.Duration
	}
	_, err = s.authorize(ctx, who, a, &r, d, extra)
	return r, err
}

// Approve records approver's approval of request id. The requester never
// counts (ErrSelfApproval); someone the policy does not allow gets
// ErrNotAllowed and changes nothing; a click after the request was settled
// gets ErrAlreadyDecided naming who settled it. The approval that completes
// the quorum moves the request to activating and enqueues the one
// activation job; before it does, the earlier approvals are counted again
// against the policy in force, and those whose approver may no longer
// approve are dropped (ActApprovalLapsed), so the request waits for
// another approval instead.
func (s *Service) Approve(ctx context.Context, approver, id string) (Request, error) {
	if r, err := s.Get(ctx, id); err != nil {
		return Request{}, err
	} else if r.Requester == approver {
		return r, ErrSelfApproval
	}
	r, err := s.actor(ctx, approver, bot.ActionApprove, id, 0, nil)
	if err != nil {
		return Request{}, err
	}
	lapsed, err := s.lapsedAtQuorum(ctx, &r, r.Approvals, r.ApprovalsNeeded, r.Duration, "")
	if err != nil {
		return Request{}, fmt.Errorf("approve %s: %w", id, err)
	}
	now := s.now()
	var quorum bool
	r, err = s.transition(ctx, id, func(r *Request) (err error) {
		if r.State == StatePending {
			r.DropApprovals("", lapsed, now)
		}
		quorum, err = r.Approve(approver, now)
		return err
	})
	if err != nil {
		return r, err
	}
	if quorum {
		s.enqueue(ctx, "activate/"+id, JobActivate, jobRef{RequestID: id})
	}
	return r, nil
}

// lapsedAtQuorum returns the approvals among prior (of r, or of one of its
// extensions: note is their history note) that no longer count, when one
// more approval would complete a quorum of needed; otherwise none.
func (s *Service) lapsedAtQuorum(ctx context.Context, r *Request, prior []Approval, needed int, d time.Duration, note string) ([]lapse, error) {
	if len(prior) == 0 || len(prior)+1 < needed {
		return nil, nil
	}
	t, err := s.countApprovals(ctx, r, prior, d, note)
	return t.lapsed, err
}

// MayDecide checks that approver may approve or deny request id (or its
// extension): ErrSelfApproval for the requester, ErrNotAllowed for someone
// the policy does not allow. The UI asks before opening a deny modal, so a
// user outside policy is refused at the click, not after typing a reason.
func (s *Service) MayDecide(ctx context.Context, approver, id string) error {
	if r, err := s.Get(ctx, id); err != nil {
		return err
	} else if r.Requester == approver {
		return ErrSelfApproval
	}
	_, err := s.actor(ctx, approver, bot.ActionApprove, id, 0, nil)
	return err
}

// Deny refuses request id; why is required. Deniers must be allowed to
// approve.
func (s *Service) Deny(ctx context.Context, approver, id, why string) (Request, error) {
	why = strings.TrimSpace(why)
	if r, err := s.Get(ctx, id); err != nil {
		return Request{}, err
	} else if r.Requester == approver {
		return r, ErrSelfApproval
	}
	if why == "" {
		return Request{}, ErrReasonRequired
	}
	if _, err := s.actor(ctx, approver, bot.ActionApprove, id, 0, nil); err != nil {
		return Request{}, err
	}
	now := s.now()
	return s.transition(ctx, id, func(r *Request) error { return r.Deny(approver, why, now) })
}

// Cancel withdraws a pending request; only the requester may.
func (s *Service) Cancel(ctx context.Context, user, id string) (Request, error) {
	now := s.now()
	return s.transition(ctx, id, func(r *Request) error { return r.Cancel(user, now) })
}

// BreakGlass lets the requester activate their own pending request at once,
// when the profile allows it and the policy grants break_glass; why is
// required. The use is announced in the audit channel and awaits review.
func (s *Service) BreakGlass(ctx context.Context, user, id, why string) (Request, error) {
	why = strings.TrimSpace(why)
	r, err := s.Get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if r.Requester != user {
		return r, ErrNotRequester
	}
	if why == "" {
		return r, ErrReasonRequired
	}
	p, ok := s.cat.Profile(r.Profile)
	if !ok || !p.BreakGlass {
		return r, &ErrBreakGlassDisabled{Profile: r.Profile}
	}
	if _, err := s.actor(ctx, user, bot.ActionBreakGlass, id, 0, map[string]string{"break_glass": "true"}); err != nil {
		return Request{}, err
	}
	now := s.now()
	r, err = s.transition(ctx, id, func(r *Request) error { return r.SelfApprove(user, why, now) })
	if err != nil {
		return r, err
	}
	s.alert(ctx, Alert{Channel: AlertAudit, Action: ActBreakGlass, Request: r, Text: alertBreakGlass(&r)})
	s.enqueue(ctx, "activate/"+id, JobActivate, jobRef{RequestID: id})
	return r, nil
}

// Review marks a break-glass use as reviewed (policy action review; never
// by the requester).
func (s *Service) Review(ctx context.Context, reviewer, id string) (Request, error) {
	if r, err := s.Get(ctx, id); err != nil {
		return Request{}, err
	} else if r.Requester == reviewer {
		return r, ErrSelfApproval
	}
	if _, err := s.actor(ctx, reviewer, bot.ActionReview, id, 0, nil); err != nil {
		return Request{}, err
	}
	now := s.now()
	return s.transition(ctx, id, func(r *Request) error { return r.Review(reviewer, now) })
}

// Revoke ends an active grant early. The requester may always end their own
// (that is "I'm done"); anyone else needs the policy's revoke. Revoking a
// grant that is already ending or ended returns it unchanged with no error;
// a request that is not active yet gets ErrNotActive. The slow part
// (terminating sessions, revoking credentials) runs as a job.
func (s *Service) Revoke(ctx context.Context, actor, id, why string) (Request, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	cause := CauseRevoked
	why = strings.TrimSpace(why)
	if actor == r.Requester {
		cause = CauseDone
		if why == "" {
			why = ReasonDone
		}
	} else if _, err := s.actor(ctx, actor, bot.ActionRevoke, id, 0, nil); err != nil {
		return Request{}, err
	}
	now := s.now()
	r, err = s.transition(ctx, id, func(r *Request) error { return r.BeginEnd(cause, actor, why, now) })
	var decided *ErrAlreadyDecided
	if errors.As(err, &decided) && (r.State == StateEnding || r.State == StateRevokeFailed ||
		r.State == StateExpired || r.State == StateRevoked) {
		return r, nil
	}
	if err != nil {
		return r, err
	}
	if err := s.enqueueErr(ctx, "end/"+id, JobEnd, jobRef{RequestID: id}); err != nil {
		// The queue is down: do the work here rather than wait for the sweep.
		if ferr := s.Finish(ctx, id); ferr != nil {
			s.log.ErrorContext(ctx, "access: ending access inline failed; the sweep will retry", "request", id, "err", ferr)
		}
	}
	return r, nil
}

// Done is the requester's "I'm done" button: Revoke by the requester.
func (s *Service) Done(ctx context.Context, user, id string) (Request, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if r.Requester != user {
		return r, ErrNotRequester
	}
	return s.Revoke(ctx, user, id, ReasonDone)
}

// Extend asks for d more on request id's grant (0: the profile's default),
// at most the profile's maximum; only the requester, when the policy grants
// extend. It goes through approval like the request did; on approval the
// same grant's window end moves and fresh credentials are delivered.
func (s *Service) Extend(ctx context.Context, user, id string, d time.Duration, why string) (Request, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if r.Requester != user {
		return r, ErrNotRequester
	}
	p, ok := s.cat.Profile(r.Profile)
	if !ok {
		return r, &ErrUnknownProfile{Name: r.Profile}
	}
	if d <= 0 {
		d = p.DefaultDuration
	}
	if d <= 0 || d > p.MaxDuration {
		return r, &ErrDurationTooLong{Profile: p.Name, Asked: d, Max: p.MaxDuration}
	}
	if _, err := s.actor(ctx, user, bot.ActionExtend, id, d, nil); err != nil {
		return Request{}, err
	}
	now := s.now()
	x := Extension{ID: bot.NewID("x-"), Duration: d, Reason: strings.TrimSpace(why), Requested: now}
	var approved bool
	r, err = s.transition(ctx, id, func(r *Request) (err error) {
		approved, err = r.RequestExtension(x, user)
		return err
	})
	if err != nil {
		return r, err
	}
	if approved {
		s.enqueue(ctx, "extend/"+id+"/"+x.ID, JobExtend, jobRef{RequestID: id, ExtensionID: x.ID})
	}
	return r, nil
}

// ApproveExtension records approver's approval of extension ext of request
// id, with the same rules as Approve.
func (s *Service) ApproveExtension(ctx context.Context, approver, id, ext string) (Request, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if r.Requester == approver {
		return r, ErrSelfApproval
	}
	x := r.extension(ext)
	if x == nil {
		return r, ErrUnknownExtension
	}
	if _, err := s.actor(ctx, approver, bot.ActionApprove, id, x.Duration, nil); err != nil {
		return Request{}, err
	}
	lapsed, err := s.lapsedAtQuorum(ctx, &r, x.Approvals, r.ApprovalsNeeded, x.Duration, "extension "+ext)
	if err != nil {
		return Request{}, fmt.Errorf("approve extension %s of %s: %w", ext, id, err)
	}
	now := s.now()
	var quorum bool
	r, err = s.transition(ctx, id, func(r *Request) (err error) {
		if x := r.extension(ext); x != nil && x.State == ExtensionPending {
			r.DropApprovals(ext, lapsed, now)
		}
		quorum, err = r.ApproveExtension(ext, approver, now)
		return err
	})
	if err != nil {
		return r, err
	}
	if quorum {
		s.enqueue(ctx, "extend/"+id+"/"+ext, JobExtend, jobRef{RequestID: id, ExtensionID: ext})
	}
	return r, nil
}

// DenyExtension refuses extension ext of request id; why is required.
func (s *Service) DenyExtension(ctx context.Context, approver, id, ext, why string) (Request, error) {
	why = strings.TrimSpace(why)
	r, err := s.Get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if r.Requester == approver {
		return r, ErrSelfApproval
	}
	if why == "" {
		return r, ErrReasonRequired
	}
	if _, err := s.actor(ctx, approver, bot.ActionApprove, id, 0, nil); err != nil {
		return Request{}, err
	}
	now := s.now()
	return s.transition(ctx, id, func(r *Request) error { return r.DenyExtension(ext, approver, why, now) })
}

// transition applies fn to request id with a conditional write, then
// records and announces the history rows fn added. fn's domain errors are
// returned as they are, with the request as last read.
func (s *Service) transition(ctx context.Context, id string, fn func(*Request) error) (Request, error) {
	var from int
	r, err := s.requests.Update(ctx, id, func(r *Request) error {
		from = len(r.History)
		return fn(r)
	})
	if errors.Is(err, bot.ErrNotFound) {
		return r, &ErrUnknownRequest{ID: id}
	}
	if err != nil {
		return r, err
	}
	if from < len(r.History) {
		s.after(ctx, r, r.History[from:])
	}
	return r, nil
}

// after audits rows, re-renders the approver message, tells the requester
// what concerns them, and drops final requests from the open index. Its
// failures are logged: the change itself is already stored.
func (s *Service) after(ctx context.Context, r Request, rows []HistoryRow) {
	s.audit(ctx, r, rows)
	s.render(ctx, r.ID)
	for _, h := range rows {
		if h.Actor != r.Requester && shouldTell(h.Action) {
			s.tell(ctx, r, h.Action)
		}
	}
	if r.State.Final() {
		if err := s.open.Store.Delete(ctx, KindOpen, openKey(&r), 0); err != nil {
			s.log.WarnContext(ctx, "access: dropping from the open index failed; the sweep will", "request", r.ID, "err", err)
		}
	}
}

// audit records one audit event per history row of r.
func (s *Service) audit(ctx context.Context, r Request, rows []HistoryRow) {
	for _, h := range rows {
		e := bot.AuditEvent{
			At: h.At, Actor: h.Actor, Action: h.Action, Subject: r.ID, Reason: h.Note, Profile: r.Profile,
			WindowStart: r.Window.ActivatedAt, WindowEnd: r.Window.ExpiresAt,
			Detail: map[string]string{"requester": r.Requester, "state": string(r.State), "kind": string(r.Kind)},
		}
		if r.Ticket != "" {
			e.Detail["ticket"] = r.Ticket
		}
		if r.BreakGlass != nil {
			e.Detail["break_glass"] = "true"
		}
		if r.End != nil {
			e.Detail["cause"] = string(r.End.Cause)
		}
		if h.Session != nil {
			e.Detail["session"] = h.Session.ID
			e.Detail["target"] = h.Session.Target
		}
		if err := s.auditor.Record(ctx, e); err != nil {
			// The request's own History holds the row; make the loss loud.
			s.log.ErrorContext(ctx, "access: audit event not recorded", "err", err, "request", r.ID, "action", h.Action, "actor", h.Actor)
		}
	}
}

// render re-reads the request (so a slow caller never paints an older
// state over a newer one) and updates its Slack message, remembering the
// message reference the first time. A failure retrying can help is
// retried through the queue (JobNotify).
func (s *Service) render(ctx context.Context, id string) {
	if err := s.renderNow(ctx, id); err != nil {
		s.log.WarnContext(ctx, "access: updating the approver message failed; retrying through the queue", "request", id, "err", err)
		s.enqueue(ctx, fmt.Sprintf("notify/%s/%d", id, s.now().UnixNano()), JobNotify, jobRef{RequestID: id})
	}
}

// renderNow is render without the retry: its error is one retrying can
// help. What Slack refuses until a person acts is handled here (unposted).
func (s *Service) renderNow(ctx context.Context, id string) error {
	r, err := s.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("re-reading %s for render: %w", id, err)
	}
	ref, err := s.notifier.Changed(ctx, r)
	var und *UndeliverableError
	switch {
	case errors.As(err, &und):
		// Never posted, or posted and now refused (the bot removed from
		// the channel, the channel archived): either way no approver can
		// act on it until a person fixes the channel.
		s.unposted(ctx, id, und)
		return nil
	case err != nil:
		return err
	}
	if ref.IsZero() || (!r.Message.IsZero() && r.Unposted == nil) {
		return nil
	}
	var from int
	now := s.now()
	r, err = s.requests.Update(ctx, id, func(r *Request) error {
		from = len(r.History)
		return r.Posted(ref, now)
	})
	if err != nil {
		s.log.WarnContext(ctx, "access: storing the message reference failed", "request", id, "err", err)
		return nil
	}
	if from < len(r.History) { // it was unposted: say it is visible now
		s.audit(ctx, r, r.History[from:])
		s.tell(ctx, r, ActPosted)
	}
	return nil
}

// tell DMs the requester about action; a failure retrying can help is
// retried through the queue (JobNotify).
func (s *Service) tell(ctx context.Context, r Request, action string) {
	err := s.notifier.Tell(ctx, r, action)
	var und *UndeliverableError
	switch {
	case err == nil:
	case errors.As(err, &und):
		s.untold(ctx, r, action, und)
	default:
		s.log.WarnContext(ctx, "access: telling the requester failed; retrying through the queue", "request", r.ID, "action", action, "err", err)
		s.enqueue(ctx, fmt.Sprintf("notify/%s/%s/%d", r.ID, action, s.now().UnixNano()), JobNotify, jobRef{RequestID: r.ID, Tell: action})
	}
}

// Notify is JobNotify: it re-renders request id's approver message from
// what is stored now or, with tell set, sends the requester that DM
// again. Its error asks the queue to retry; what Slack refuses for good
// is not retried.
func (s *Service) Notify(ctx context.Context, id, tell string) error {
	if tell == "" {
		return s.renderNow(ctx, id)
	}
	r, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	err = s.notifier.Tell(ctx, r, tell)
	var und *UndeliverableError
	if errors.As(err, &und) {
		s.untold(ctx, r, tell, und)
		return bot.Permanent(err)
	}
	return err
}

// untold handles a DM to the requester that Slack refuses for good (the
// user deactivated, DMs with the bot closed): nobody else would learn
// that the requester was never told, so ops are alerted naming the
// request, the profile and Slack's reason.
func (s *Service) untold(ctx context.Context, r Request, action string, und *UndeliverableError) {
	s.log.ErrorContext(ctx, "access: the requester cannot be told; alerting ops", "request", r.ID, "profile", r.Profile,
		"action", action, "code", und.Code, "err", und.Err)
	s.alert(ctx, Alert{Channel: AlertOps, Action: ActUntold, Request: r, Text: alertUntold(&r, action, und.Code)})
}

// unposted handles an approver message Slack will not take until a person
// acts: the request is marked (shown in /access list and audited), the
// requester is told what went wrong and what to do, and ops are alerted,
// once per problem. The sweep keeps trying to post it.
func (s *Service) unposted(ctx context.Context, id string, und *UndeliverableError) {
	var from int
	now := s.now()
	r, err := s.requests.Update(ctx, id, func(r *Request) error {
		from = len(r.History)
		return r.MarkUnposted(und.Channel, und.Code, now)
	})
	if err != nil {
		s.log.ErrorContext(ctx, "access: marking a request unposted failed", "request", id, "err", err)
		return
	}
	if from == len(r.History) {
		return // already known (or posted meanwhile)
	}
	s.log.ErrorContext(ctx, "access: the approver message cannot be posted; telling the requester and ops",
		"request", id, "profile", r.Profile, "channel", und.Channel, "code", und.Code)
	s.audit(ctx, r, r.History[from:])
	s.tell(ctx, r, ActUnposted)
	s.alert(ctx, Alert{Channel: AlertOps, Action: ActUnposted, Request: r, Text: alertUnposted(&r)})
}

func (s *Service) alert(ctx context.Context, a Alert) {
	if err := s.notifier.Alert(ctx, a); err != nil {
		s.log.ErrorContext(ctx, "access: alert not posted", "channel", a.Channel, "action", a.Action, "request", a.Request.ID, "err", err)
	}
}

func (s *Service) enqueueErr(ctx context.Context, jobID, kind string, ref jobRef) error {
	j, err := bot.NewJob(jobID, kind, ref)
	if err == nil {
		err = s.queue.Enqueue(ctx, j)
	}
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", jobID, err)
	}
	return nil
}

// enqueue hands work to the queue; a failure is logged and left to the
// sweep, which re-enqueues stalled work.
func (s *Service) enqueue(ctx context.Context, jobID, kind string, ref jobRef) {
	if err := s.enqueueErr(ctx, jobID, kind, ref); err != nil {
		s.log.ErrorContext(ctx, "access: enqueue failed; the sweep will retry", "job", jobID, "err", err)
	}
}

func openKey(r *Request) string { return r.Requester + "/" + r.ID }

func expiryTimerID(id string) string { return "expire/" + id }

func (s *Service) scheduleExpiry(ctx context.Context, id string, at time.Time) error {
	j, err := bot.NewJob(fmt.Sprintf("expire/%s/%d", id, at.Unix()), JobExpire, jobRef{RequestID: id})
	if err != nil {
		return err
	}
	if err := s.timers.Schedule(ctx, bot.Timer{ID: expiryTimerID(id), At: at, Job: j}); err != nil {
		return fmt.Errorf("schedule expiry of %s: %w", id, err)
	}
	return nil
}
