package policies

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
)

// Context keys an AuthzQuery may carry; each becomes the Cedar context
// attribute of the same name ("alert" becomes the resource of alert_act).
const (
	CtxEnv        = "env"         // environment, e.g. "prod"
	CtxBreakGlass = "break_glass" // "true" when a request is made as break-glass
	CtxRequester  = "requester"   // Slack id of the request's requester (approve, revoke, extend, review)
	CtxAlert      = "alert"       // alert id, required for alert_act
	CtxService    = "service"     // alert attributes
	CtxRole       = "role"
	CtxHost       = "host"
	CtxMonitor    = "monitor"
	// CtxECSService is the ECS service of an ecs-exec request; it becomes
	// the service attribute of the Profile resource.
	CtxECSService = "ecs_service"
	// CtxAccount is the AWS account of an identity-center request; it
	// becomes the account attribute of the Profile resource.
	CtxAccount  = "account"
	CtxPipeline = "pipeline" // pipeline name, required for approve_release (its resource)
	CtxStage    = "stage"    // the pipeline's approval stage (approve_release)
)

var contextKeys = []string{CtxAccount, CtxAlert, CtxBreakGlass, CtxECSService, CtxEnv, CtxHost, CtxMonitor, CtxPipeline, CtxRequester, CtxRole, CtxService, CtxStage}

// Authorize implements bot.Authorizer: it answers q from the Cedar rules,
// after the checks the catalogue imposes whatever the rules say (unknown
// profile, duration above the profile's maximum, targets outside an ssm
// profile's selector, break-glass on a profile that does not allow it).
//
// It never decides that a requester may approve their own request: that
// is refused by bot/access whatever the rules say, so no rule here can
// grant it. An error means the query itself is malformed (a caller bug);
// a refusal is a Decision with Allow false and its reasons.
//
// Decision.Approvals, for an allowed request, extend or domain operation,
// is the profile's approvals raised by any @approvals annotation on the
// deciding permit rules.
func (s *Set) Authorize(ctx context.Context, q bot.AuthzQuery) (bot.Decision, error) {
	if err := ctx.Err(); err != nil {
		return bot.Decision{}, fmt.Errorf("authorize %s: %w", q.Action, err)
	}
	ev, err := s.evaluate(q)
	if err != nil {
		return bot.Decision{}, err
	}
	return ev.outcome(), nil
}

// evaluation is everything computed to answer one query.
type evaluation struct {
	q         bot.AuthzQuery
	principal cedar.Entity
	requester *cedar.Entity
	profile   *profile
	context   cedar.Record
	ents      entities
	// refusals are the catalogue's own denials, before any rule.
	refusals []string
	results  []result
}

// result is the Cedar decision on one resource.
type result struct {
	resource cedar.EntityUID
	allow    bool
	permits  []*rule
	forbids  []*rule
	errors   []string // rules that failed to evaluate
	failed   []*rule  // forbid rules among them: they deny
}

func (s *Set) evaluate(q bot.AuthzQuery) (*evaluation, error) {
	if q.Principal.ID == "" {
		return nil, fmt.Errorf("authorize %s: no principal", q.Action)
	}
	if q.Duration < 0 {
		return nil, fmt.Errorf("authorize %s: negative duration %s", q.Action, q.Duration)
	}
	for k := range q.Context {
		if !slices.Contains(contextKeys, k) {
			return nil, fmt.Errorf("authorize %s: unknown context key %q (known: %s)", q.Action, k, strings.Join(contextKeys, ", "))
		}
	}
	ev := &evaluation{q: q}
	ev.principal = s.user(q.Principal.ID, q.Principal.Email, q.Principal.SlackGroups)
	ev.ents = entities{static: s.static, extra: []cedar.Entity{ev.principal}}
	if r := q.Context[CtxRequester]; r != "" && r != q.Principal.ID {
		u := s.user(r, "", nil)
		ev.requester = &u
		ev.ents.extra = append(ev.ents.extra, u)
	}

	var resources []cedar.EntityUID
	switch q.Action {
	case bot.ActionRequest, bot.ActionBreakGlass, bot.ActionExtend:
		if q.Profile == "" {
			return nil, fmt.Errorf("authorize %s: no profile", q.Action)
		}
		resources = s.profileResource(ev)
		if ev.profile != nil {
			ev.refusals = append(ev.refusals, catalogueRefusals(ev.profile, q)...)
		}
	case bot.ActionApprove, bot.ActionRevoke, bot.ActionReview:
		switch {
		case q.Profile != "":
			resources = s.profileResource(ev)
		case len(q.Targets) > 0:
			resources = ev.instances()
		default:
			return nil, fmt.Errorf("authorize %s: no profile and no target", q.Action)
		}
	case bot.ActionDomainJoin, bot.ActionDomainLeave:
		if len(q.Targets) == 0 {
			return nil, fmt.Errorf("authorize %s: no target instance", q.Action)
		}
		resources = ev.instances()
	case bot.ActionAlertAct:
		id := q.Context[CtxAlert]
		if id == "" {
			return nil, fmt.Errorf("authorize %s: no %q in context", q.Action, CtxAlert)
		}
		resources = []cedar.EntityUID{cedar.NewEntityUID(typeAlert, cedar.String(id))}
	case bot.ActionApproveRelease, bot.ActionStartRelease:
		uid, err := ev.pipeline()
		if err != nil {
			return nil, err
		}
		resources = []cedar.EntityUID{uid}
	default:
		return nil, fmt.Errorf("authorize: unknown action %q", q.Action)
	}
	rec, err := ev.buildContext()
	if err != nil {
		return nil, fmt.Errorf("authorize %s: %w", q.Action, err)
	}
	ev.context = rec

	action := cedar.NewEntityUID(typeAction, cedar.String(q.Action))
	for _, res := range resources {
		dec, diag := cedar.Authorize(s.policies, ev.ents, cedar.Request{
			Principal: ev.principal.UID, Action: action, Resource: res, Context: rec,
		})
		r := result{resource: res, allow: dec == cedar.Allow}
		for _, reason := range diag.Reasons {
			ru := s.rules[reason.PolicyID]
			if ru.Forbid {
				r.forbids = append(r.forbids, ru)
			} else {
				r.permits = append(r.permits, ru)
			}
		}
		for _, e := range diag.Errors {
			ru := s.rules[e.PolicyID]
			r.errors = append(r.errors, fmt.Sprintf("%s could not be evaluated: %s", ru.ID, e.Message))
			if ru.Forbid {
				// Cedar skips a rule that errs; a forbid that cannot be
				// evaluated must not turn into a permit, so it denies.
				r.failed = append(r.failed, ru)
				r.allow = false
			}
		}
		slices.SortFunc(r.permits, byPosition)
		slices.SortFunc(r.forbids, byPosition)
		ev.results = append(ev.results, r)
	}
	return ev, nil
}

func byPosition(a, b *rule) int {
	return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.ID, b.ID))
}

// user builds the principal entity: a User in every group listing the id or
// the e-mail, or one of the Slack user groups.
func (s *Set) user(id, email string, slackGroups []string) cedar.Entity {
	var parents []cedar.EntityUID
	parents = append(parents, s.byUser[id]...)
	if email != "" {
		parents = append(parents, s.byEmail[strings.ToLower(email)]...)
	}
	for _, g := range slackGroups {
		parents = append(parents, s.bySlack[g]...)
	}
	return cedar.Entity{
		UID:        cedar.NewEntityUID(typeUser, cedar.String(id)),
		Parents:    cedar.NewEntityUIDSet(parents...),
		Attributes: cedar.NewRecord(cedar.RecordMap{"email": cedar.String(email)}),
	}
}

// profileResource resolves q.Profile; an unknown profile is a refusal and
// no resource.
func (s *Set) profileResource(ev *evaluation) []cedar.EntityUID {
	i, ok := s.byName[ev.q.Profile]
	if !ok {
		// No rule is asked about a profile that does not exist: its
		// attributes would not evaluate.
		ev.refusals = append(ev.refusals, fmt.Sprintf("unknown profile %q (known: %s)", ev.q.Profile, listOrNone(s.profileNames())))
		return nil
	}
	ev.profile = &s.profiles[i]
	uid := cedar.NewEntityUID(typeProfile, cedar.String(ev.q.Profile))
	if svc := ev.q.Context[CtxECSService]; svc != "" && ev.profile.Kind == access.KindECSExec {
		ev.ents.extra = append(ev.ents.extra, ecsProfileEntity(*ev.profile, svc))
	}
	if acct := ev.q.Context[CtxAccount]; acct != "" && ev.profile.Kind == access.KindIdentityCenter {
		ev.ents.extra = append(ev.ents.extra, idcProfileEntity(*ev.profile, acct))
	}
	return []cedar.EntityUID{uid}
}

// instances makes each target an Instance entity whose tags are its EC2 tags.
func (ev *evaluation) instances() []cedar.EntityUID {
	out := make([]cedar.EntityUID, 0, len(ev.q.Targets))
	for _, t := range ev.q.Targets {
		tags := make(cedar.RecordMap, len(t.Tags))
		for k, v := range t.Tags {
			tags[cedar.String(k)] = cedar.String(v)
		}
		uid := cedar.NewEntityUID(typeInstance, cedar.String(t.ID))
		ev.ents.extra = append(ev.ents.extra, cedar.Entity{UID: uid, Tags: cedar.NewRecord(tags)})
		out = append(out, uid)
	}
	return out
}

// catalogueRefusals are the limits of the profile itself, which no rule
// can lift.
func catalogueRefusals(p *profile, q bot.AuthzQuery) []string {
	var out []string
	if q.Duration > p.MaxDuration {
		out = append(out, fmt.Sprintf("%s exceeds the maximum %s of profile %q", fmtDuration(q.Duration), fmtDuration(p.MaxDuration), p.Name))
	}
	if q.Action == bot.ActionBreakGlass && !p.BreakGlass {
		out = append(out, fmt.Sprintf("profile %q does not allow break-glass", p.Name))
	}
	for _, t := range q.Targets {
		switch {
		case p.Kind != access.KindSSM:
			out = append(out, fmt.Sprintf("profile %q is %s and takes no instances (got %s)", p.Name, p.Kind, t.ID))
		case !p.Instances.Selects(t):
			out = append(out, fmt.Sprintf("instance %s is not in profile %q (%s)", t.ID, p.Name, describeSelector(p.Instances)))
		}
	}
	return out
}

func describeSelector(sel access.InstanceSelector) string {
	var parts []string
	if len(sel.IDs) > 0 {
		parts = append(parts, "ids "+strings.Join(sel.IDs, ", "))
	}
	if len(sel.Tags) > 0 {
		var tags []string
		for _, k := range slices.Sorted(maps.Keys(sel.Tags)) {
			tags = append(tags, k+"="+sel.Tags[k])
		}
		parts = append(parts, "tags "+strings.Join(tags, ", "))
	}
	return "needs " + strings.Join(parts, " or ")
}

// buildContext makes the Cedar context record (see tokken.cedarschema).
func (ev *evaluation) buildContext() (cedar.Record, error) {
	q := ev.q
	now := q.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	bg := q.Action == bot.ActionBreakGlass
	if v, ok := q.Context[CtxBreakGlass]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cedar.Record{}, fmt.Errorf("context %s %q is not true or false", CtxBreakGlass, v)
		}
		bg = bg || b
	}
	ids := make([]cedar.Value, 0, len(q.Targets))
	var tags []cedar.Value
	for _, t := range q.Targets {
		ids = append(ids, cedar.String(t.ID))
		for k, v := range t.Tags {
			tags = append(tags, cedar.String(k+"="+v))
		}
	}
	env := q.Context[CtxEnv]
	if env == "" {
		env = targetsEnv(q.Targets)
	}
	if env == "" && ev.profile != nil {
		env = ev.profile.Env
	}
	m := cedar.RecordMap{
		"duration_minutes": cedar.Long((q.Duration + time.Minute - 1) / time.Minute),
		"targets":          cedar.NewSet(ids...),
		"target_tags":      cedar.NewSet(tags...),
		"hour":             cedar.Long(now.Hour()),
		"weekday":          cedar.String(now.Weekday().String()[:3]),
		"env":              cedar.String(env),
		"break_glass":      cedar.Boolean(bg),
		"service":          cedar.String(q.Context[CtxService]),
		"role":             cedar.String(q.Context[CtxRole]),
		"host":             cedar.String(q.Context[CtxHost]),
		"monitor":          cedar.String(q.Context[CtxMonitor]),
	}
	if r := q.Context[CtxRequester]; r != "" {
		m["requester"] = cedar.NewEntityUID(typeUser, cedar.String(r))
	}
	return cedar.NewRecord(m), nil
}

// targetsEnv is the Env tag all targets share, or "".
func targetsEnv(ts []bot.Target) string {
	env := ""
	for i, t := range ts {
		e := t.Tags["Env"]
		if e == "" {
			e = t.Tags["env"]
		}
		if e == "" || (i > 0 && e != env) {
			return ""
		}
		env = e
	}
	return env
}

// outcome folds the per-resource results into one decision: allowed only
// when the catalogue refuses nothing and every resource is allowed.
func (ev *evaluation) outcome() bot.Decision {
	var o bot.Decision
	o.Allow = len(ev.refusals) == 0
	o.Reasons = append(o.Reasons, ev.refusals...)
	for _, r := range ev.results {
		if !r.allow {
			o.Allow = false
		}
	}
	if !o.Allow {
		for _, r := range ev.results {
			if r.allow {
				continue
			}
			for _, ru := range r.forbids {
				o.Reasons = appendNew(o.Reasons, ru.describe())
			}
			for _, ru := range r.failed {
				o.Reasons = appendNew(o.Reasons, fmt.Sprintf("forbid %s could not be evaluated; denied to be safe", ru.ID))
			}
			if len(r.forbids) == 0 && len(r.failed) == 0 {
				o.Reasons = appendNew(o.Reasons, fmt.Sprintf("no rule permits %s on %s for %s", ev.q.Action, describeUID(r.resource), ev.q.Principal.ID))
			}
		}
		return o
	}
	for _, r := range ev.results {
		for _, ru := range r.permits {
			o.Reasons = appendNew(o.Reasons, ru.describe())
			o.Approvals = max(o.Approvals, ru.Approvals)
		}
	}
	switch ev.q.Action {
	case bot.ActionRequest, bot.ActionExtend:
		if ev.profile != nil {
			o.Approvals = max(o.Approvals, ev.profile.Approvals)
		}
	case bot.ActionDomainJoin, bot.ActionDomainLeave, bot.ActionApproveRelease:
	default:
		o.Approvals = 0
	}
	return o
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// describe renders a rule for a reason: "permit policies/access.cedar:12
// (sre-request): SRE may request any profile".
func (r *rule) describe() string {
	effect := "permit"
	if r.Forbid {
		effect = "forbid"
	}
	s := effect + " " + string(r.ID)
	if r.Name != "" {
		s += " (" + r.Name + ")"
	}
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	return s
}

func describeUID(uid cedar.EntityUID) string {
	switch uid.Type {
	case typeProfile:
		return fmt.Sprintf("profile %q", string(uid.ID))
	case typeInstance:
		return "instance " + string(uid.ID)
	case typeAlert:
		return "alert " + string(uid.ID)
	}
	return uid.String()
}

// fmtDuration writes 1h30m rather than 1h30m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// entities is the entity store of one query: the loaded groups and
// profiles plus the principal and the targets, without copying the former.
type entities struct {
	static cedar.EntityMap
	extra  []cedar.Entity
}

// Get implements cedar.EntityGetter.
func (e entities) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	for _, x := range e.extra {
		if x.UID == uid {
			return x, true
		}
	}
	return e.static.Get(uid)
}

// Profile implements access.Catalogue. The result is a copy: the Set stays
// immutable whatever the caller does with it.
func (s *Set) Profile(name string) (access.Profile, bool) {
	i, ok := s.byName[name]
	if !ok {
		return access.Profile{}, false
	}
	return copyProfile(s.profiles[i].Profile), true
}

// Profiles implements access.Catalogue: every profile, in file order.
func (s *Set) Profiles() []access.Profile {
	out := make([]access.Profile, len(s.profiles))
	for i, p := range s.profiles {
		out[i] = copyProfile(p.Profile)
	}
	return out
}

func copyProfile(p access.Profile) access.Profile {
	p.Presets = slices.Clone(p.Presets)
	p.Instances.IDs = slices.Clone(p.Instances.IDs)
	p.Instances.Tags = maps.Clone(p.Instances.Tags)
	p.ECS.Services = slices.Clone(p.ECS.Services)
	p.ECS.Families = slices.Clone(p.ECS.Families)
	p.ECS.Containers = slices.Clone(p.ECS.Containers)
	p.ECS.Tags = maps.Clone(p.ECS.Tags)
	return p
}

// Groups lists the names of the groups defined in groups.yaml, sorted.
func (s *Set) Groups() []string { return slices.Clone(s.groups) }

// SlackUserGroups lists the Slack user group ids (S…) groups.yaml names,
// sorted: the groups whose membership a directory must look up to fill
// bot.Principal.SlackGroups (Slack cannot list a user's groups directly).
func (s *Set) SlackUserGroups() []string {
	out := make([]string, 0, len(s.bySlack))
	for id := range s.bySlack {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Compile-time checks that Set implements the ports.
var (
	_ bot.Authorizer       = (*Set)(nil)
	_ access.Catalogue     = (*Set)(nil)
	_ access.IdentityUsers = (*Set)(nil)
	_ cedar.EntityGetter   = entities{}
)
