package policies

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
)

// actions lists every action the rules can name, in the schema's order.
var actions = []bot.Action{
	bot.ActionRequest, bot.ActionApprove, bot.ActionBreakGlass, bot.ActionRevoke, bot.ActionExtend,
	bot.ActionReview, bot.ActionDomainJoin, bot.ActionDomainLeave, bot.ActionAlertAct,
}

const usage = `usage:
  tokken policy check   [--dir DIR] [--aws]
  tokken policy explain [--dir DIR] --user U… --action ACTION [--profile NAME] [--duration 30m]
                        [--email ADDRESS] [--slack-group S…]... [--target i-…[,Key=Value]...]...
                        [--context key=value]... [--at 2026-01-02T15:04:05Z]

DIR defaults to $TOKKEN_POLICY_DIR, else ./policies.
check exits 0 when the directory is valid, 1 with every problem as file:line: message.
  --aws also looks every profile's role up in AWS (the AWS SDK's usual credentials
  and region): it must exist and carry tokken's permissions boundary
  ($TOKKEN_GRANT_BOUNDARY_ARN, default policy/tokken-grant-boundary of its account).
  For identity-center profiles it looks the permission set up in IAM Identity Center
  instead: it must exist, and a session duration longer than the profile's
  max_duration is warned about (portal sessions outlive the grant by up to it).
With SLACK_BOT_TOKEN set it also warns, without posting, about every channel it names
(and TOKKEN_AUDIT_CHANNEL, TOKKEN_OPS_CHANNEL, TOKKEN_ALERT_CHANNEL, TOKKEN_DOMAIN_CHANNEL)
that the bot cannot post to; warnings do not change the exit code.
explain exits 0 when allowed, 1 when denied, and prints the rules that decided.
`

// RoleChecker tells whether a profile's role may be granted (for `check
// --aws`): nil, or an error saying why not. main wires it to
// infra/awsgrant's CheckRole, so the policies package needs no AWS SDK.
type RoleChecker func(ctx context.Context, roleARN string) error

// PermissionSetChecker describes an identity-center profile's permission
// set (for `check --aws`) in the Identity Center instance tokken works on:
// nameOrARN is the profile's permission_set. main wires it to
// infra/identitycenter.
type PermissionSetChecker func(ctx context.Context, nameOrARN string) (access.PermissionSet, error)

// checkPermissionSets looks up the permission set of every identity-center
// profile in dir (valid already), prints one line per profile, and returns
// how many could not be found. A session duration longer than the
// profile's max_duration is a warning: Identity Center cannot end portal
// sessions opened during the grant before it runs out.
func checkPermissionSets(ctx context.Context, dir string, sets PermissionSetChecker, stdout io.Writer) int {
	set, err := Load(dir)
	if err != nil {
		fmt.Fprintf(stdout, "%s: %v\n", dir, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	bad := 0
	for _, p := range set.Profiles() {
		if p.Kind != access.KindIdentityCenter {
			continue
		}
		what := fmt.Sprintf("profile %s: permission set %s", p.Name, p.IDC.PermissionSet)
		if sets == nil {
			bad++
			fmt.Fprintf(stdout, "%s: cannot be looked up: IAM Identity Center is not configured here (TOKKEN_IDC_INSTANCE_ARN, TOKKEN_IDC_IDENTITY_STORE_ID)\n", what)
			continue
		}
		ps, err := sets(ctx, p.IDC.PermissionSet)
		if err != nil {
			bad++
			fmt.Fprintf(stdout, "%s: %v\n", what, err)
			continue
		}
		if ps.SessionDuration > p.MaxDuration {
			fmt.Fprintf(stdout, "warning: %s: its session duration %s is longer than the profile's max_duration %s: "+
				"a portal session opened during a grant keeps working up to %s after tokken removes the assignment; "+
				"shorten the permission set's session duration to %s or less\n",
				what, fmtDuration(ps.SessionDuration), fmtDuration(p.MaxDuration), fmtDuration(ps.SessionDuration), fmtDuration(p.MaxDuration))
			continue
		}
		fmt.Fprintf(stdout, "%s: found (session duration %s)\n", what, fmtDuration(ps.SessionDuration))
	}
	return bad
}

// RunCLI runs `tokken policy <args>` and returns the exit code: 0 valid or
// allowed, 1 problems found or denied, 2 usage error. args excludes
// "tokken policy". opts extends `check` (see CheckOptions); without
// opts.Roles, --aws is a usage error.
func RunCLI(ctx context.Context, args []string, stdout, stderr io.Writer, opts CheckOptions) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	defaultDir := os.Getenv("TOKKEN_POLICY_DIR")
	if defaultDir == "" {
		defaultDir = "policies"
	}
	fs := flag.NewFlagSet("tokken policy "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	dir := fs.String("dir", defaultDir, "policy directory")
	switch args[0] {
	case "check":
		withAWS := fs.Bool("aws", false, "also look every profile's role up in AWS")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *withAWS && opts.Roles == nil {
			fmt.Fprintf(stderr, "check: --aws is not available here\n%s", usage)
			return 2
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "check: unexpected argument %q\n%s", fs.Arg(0), usage)
			return 2
		}
		probs := Check(*dir)
		for _, p := range probs {
			fmt.Fprintln(stdout, p)
		}
		if len(probs) > 0 {
			fmt.Fprintf(stderr, "%d problem(s) in %s\n", len(probs), *dir)
			return 1
		}
		if *withAWS {
			n := checkRoles(ctx, *dir, opts.Roles, stdout)
			m := checkPermissionSets(ctx, *dir, opts.PermissionSets, stdout)
			if n > 0 {
				fmt.Fprintf(stderr, "%d role(s) in %s may not be granted\n", n, *dir)
			}
			if m > 0 {
				fmt.Fprintf(stderr, "%d permission set(s) in %s cannot be found\n", m, *dir)
			}
			if n+m > 0 {
				return 1
			}
		}
		if opts.Channels != nil {
			uses, err := Channels(*dir)
			if err != nil {
				fmt.Fprintf(stderr, "%s: listing its channels: %v\n", *dir, err)
				return 1
			}
			for _, w := range CheckChannels(ctx, append(uses, opts.Extra...), opts.Channels) {
				fmt.Fprintln(stdout, w)
			}
		}
		if r := PipelineReminder(*dir); r != "" {
			fmt.Fprintln(stdout, r)
		}
		fmt.Fprintf(stdout, "%s: ok\n", *dir)
		return 0
	case "explain":
		return explainCLI(fs, dir, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown policy command %q\n%s", args[0], usage)
		return 2
	}
}

// checkRoles looks up the role of every profile in dir (valid already),
// prints one line per role, and returns how many may not be granted.
func checkRoles(ctx context.Context, dir string, roles RoleChecker, stdout io.Writer) int {
	set, err := Load(dir)
	if err != nil {
		fmt.Fprintf(stdout, "%s: %v\n", dir, err)
		return 1
	}
	byRole := map[string][]string{}
	for _, p := range set.Profiles() {
		if p.Kind == access.KindIdentityCenter {
			continue // no role: checkPermissionSets
		}
		byRole[p.RoleARN] = append(byRole[p.RoleARN], p.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	bad := 0
	for _, arn := range slices.Sorted(maps.Keys(byRole)) {
		what := fmt.Sprintf("profile %s: role %s", strings.Join(byRole[arn], ", "), arn)
		if err := roles(ctx, arn); err != nil {
			bad++
			fmt.Fprintf(stdout, "%s: %v\n", what, err)
			continue
		}
		fmt.Fprintf(stdout, "%s: may be granted\n", what)
	}
	return bad
}

func explainCLI(fs *flag.FlagSet, dir *string, args []string, stdout, stderr io.Writer) int {
	var (
		q        bot.AuthzQuery
		action   = fs.String("action", "", "action: "+joinActions())
		duration = fs.Duration("duration", 0, "requested duration, e.g. 30m")
		at       = fs.String("at", "", "when the question is asked (RFC 3339; default now)")
		groups   multiFlag
		targets  multiFlag
		ctxKV    multiFlag
	)
	fs.StringVar(&q.Principal.ID, "user", "", "Slack user id (U…)")
	fs.StringVar(&q.Principal.Email, "email", "", "the user's e-mail, as Slack knows it")
	fs.StringVar(&q.Profile, "profile", "", "access profile name")
	fs.Var(&groups, "slack-group", "a Slack user group id the user is in (repeatable)")
	fs.Var(&targets, "target", "an instance: i-…[,Key=Value]... (repeatable)")
	fs.Var(&ctxKV, "context", "a context key=value (repeatable): "+strings.Join(contextKeys, ", "))
	if err := fs.Parse(args); err != nil {
		return 2
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "explain: "+format+"\n%s", append(a, usage)...)
		return 2
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	if q.Principal.ID == "" {
		return bad("--user is required")
	}
	q.Action = bot.Action(*action)
	known := false
	for _, a := range actions {
		known = known || a == q.Action
	}
	if !known {
		return bad("--action %q is not one of %s", *action, joinActions())
	}
	q.Duration = *duration
	q.Principal.SlackGroups = groups
	q.Now = time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return bad("--at %q is not an RFC 3339 time (2026-01-02T15:04:05Z)", *at)
		}
		q.Now = t
	}
	for _, t := range targets {
		target, err := parseTarget(t)
		if err != nil {
			return bad("%v", err)
		}
		q.Targets = append(q.Targets, target)
	}
	for _, kv := range ctxKV {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return bad("--context %q is not key=value", kv)
		}
		if q.Context == nil {
			q.Context = map[string]string{}
		}
		q.Context[k] = v
	}

	set, err := Load(*dir)
	if err != nil {
		var probs Problems
		if errors.As(err, &probs) {
			for _, p := range probs {
				fmt.Fprintln(stderr, p)
			}
		} else {
			fmt.Fprintln(stderr, err)
		}
		fmt.Fprintf(stderr, "explain: %s does not load; fix it first (tokken policy check)\n", *dir)
		return 1
	}
	ex := Explain(set, q)
	if ex.Err != nil {
		return bad("%v", ex.Err)
	}
	fmt.Fprint(stdout, ex.String())
	if !ex.Decision.Allow {
		return 1
	}
	return 0
}

// parseTarget reads "i-0abc,Env=prod,Name=web-01".
func parseTarget(s string) (bot.Target, error) {
	parts := strings.Split(s, ",")
	t := bot.Target{ID: parts[0]}
	if !bot.IsInstanceID(t.ID) {
		return t, fmt.Errorf("--target %q: %q is not an instance id (i-0123456789abcdef0)", s, t.ID)
	}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return t, fmt.Errorf("--target %q: tag %q is not Key=Value", s, p)
		}
		if t.Tags == nil {
			t.Tags = map[string]string{}
		}
		t.Tags[k] = v
	}
	return t, nil
}

func joinActions() string {
	s := make([]string, len(actions))
	for i, a := range actions {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
