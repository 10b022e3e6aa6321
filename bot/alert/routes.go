package alert

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Routes decides where alerts are posted: the first Rule whose Match
// accepts the alert wins, else the default. Routes is immutable once built
// (policies.LoadRoutes builds it from policies/routes.yaml) and safe for
// concurrent use.
//
// Two guarantees hold whatever the rules say, because the mistakes they
// prevent are the ones that make on-call ignore a channel or miss a page:
//   - In a quiet environment (staging by default) a rule's mention only
//     applies when its match names that environment explicitly, so a broad
//     "critical → @oncall" rule never pages anyone for staging.
//   - A drop rule only drops tokken's own alerts (revoke failed, DLQ not
//     empty) when its match names source tokken explicitly.
//
// Closed alerts and notices never mention anyone. A dropped alert is still
// stored by the lifecycle; Drop only means "do not post".
type Routes struct {
	// File names the source of the rules in Decision.Rule, e.g.
	// "policies/routes.yaml".
	File string
	// Environments derive an alert's environment; first match wins. When
	// none matches, the tags named by TagKeys and then tokens of service,
	// role and host names are consulted (see Environment).
	Environments []EnvRule
	// TagKeys are the alarm tag keys (compared case-insensitively) that
	// name an environment. Nil means env, environment and stage.
	TagKeys []string
	// Quiet lists environments where mentions need an explicit rule. Nil
	// means DefaultQuiet; an empty non-nil slice disables the guard.
	Quiet []string
	Rules []Rule
	// Default applies when no rule matches; its Match is ignored. Its
	// channel is replaced by EnvChannels[environment] when that is set.
	Default     Rule
	EnvChannels map[string]string
}

// defaultTagKeys are the tag keys consulted when Routes.TagKeys is nil;
// never modified.
var defaultTagKeys = []string{"env", "environment", "stage"}

// DefaultQuiet returns the quiet environments used when Routes.Quiet is nil.
func DefaultQuiet() []string { return []string{"staging"} }

// Rule is one route.
type Rule struct {
	Name string
	// Line is the rule's line in Routes.File (0 when built in code).
	Line  int
	Match Match
	// Channel is the Slack channel id to post to; Mention a Slack user
	// group id ("S…"), user id ("U…"/"W…"), "here" or "channel". Drop
	// suppresses posting instead.
	Channel string
	Mention string
	Drop    bool
}

// Match selects alerts. Every non-empty field must accept the alert; within
// a field any one entry suffices. String entries are case-insensitive
// patterns where * matches any run of characters and ? one character. An
// empty Match accepts everything.
type Match struct {
	Sources []Source
	Orgs    []string
	// Services match the alert's service or the service of any of its
	// host's roles.
	Services []string
	// Roles match a role name ("web"), or "service:role" when the pattern
	// contains a colon ("shop:web", spaces around the colon ignored).
	Roles []string
	// Hosts match the host name, host id or EC2 instance id.
	Hosts        []string
	Monitors     []string
	Environments []string
	// Statuses match the alert's current status; a notice (which has no
	// status) never matches a rule that lists statuses.
	Statuses []Status
}

// EnvRule assigns environment Name to alerts it matches (AND across
// non-empty fields, OR within one, patterns as in Match).
type EnvRule struct {
	Name     string
	Line     int
	Orgs     []string
	Services []string
	Roles    []string
	Hosts    []string
	// Accounts match a CloudWatch alarm's AWS account id.
	Accounts []string
	// Tags match alarm tags: every key must be present (case-insensitive)
	// with a value matching the pattern.
	Tags map[string]string
}

// Decision is where one alert goes.
type Decision struct {
	Drop    bool
	Channel string
	// Mention is empty or as in Rule.Mention.
	Mention string
	// Environment is the derived environment ("" when unknown).
	Environment string
	// Rule names the deciding rule: "policies/routes.yaml:12" or
	// "default"; shown in logs and audit so a surprising route is
	// explainable.
	Rule string
	// Note explains an adjustment made by the guarantees above, e.g.
	// "mention suppressed: quiet environment staging".
	Note string
}

// subject is what routing looks at, built from an Alert or a Notice.
type subject struct {
	source   Source
	org      string
	service  string
	roles    []Role
	hosts    []string
	monitor  string
	status   Status // "" for notices
	account  string
	tags     map[string]string
	env      string
	open     bool
	isNotice bool
}

func alertSubject(a Alert) subject {
	s := subject{
		source: a.Source, org: a.Org, service: a.Service, monitor: a.Monitor,
		status: a.Status, account: a.Account, tags: a.Tags, env: a.Environment, open: a.Open,
	}
	s.addHost(a.Host)
	return s
}

func noticeSubject(n Notice) subject {
	s := subject{source: n.Source, org: n.Org, monitor: n.Monitor, isNotice: true}
	s.addHost(n.Host)
	return s
}

func (s *subject) addHost(h *Host) {
	if h == nil {
		return
	}
	s.roles = h.Roles
	for _, v := range []string{h.Name, h.ID, h.InstanceID} {
		if v != "" {
			s.hosts = append(s.hosts, v)
		}
	}
}

func (s subject) services() []string {
	var out []string
	if s.service != "" {
		out = append(out, s.service)
	}
	for _, r := range s.roles {
		out = append(out, r.Service)
	}
	return out
}

// Environment derives a's environment for routing. In order: a.Environment
// if already set; the first matching EnvRule; a tag named by TagKeys; a
// token of the service, role or host names ("shop-stg", "prod-web").
// Common spellings are normalised: prod/prd → production, stg/stage →
// staging, dev → development. It returns "" when nothing says.
func (r *Routes) Environment(a Alert) string {
	return r.environment(alertSubject(a))
}

func (r *Routes) environment(s subject) string {
	if s.env != "" {
		return NormalizeEnv(s.env)
	}
	if r != nil {
		for _, e := range r.Environments {
			if e.matches(s) {
				return e.Name
			}
		}
	}
	keys := defaultTagKeys
	if r != nil && r.TagKeys != nil {
		keys = r.TagKeys
	}
	for _, k := range keys {
		for tk, tv := range s.tags {
			if strings.EqualFold(tk, k) && strings.TrimSpace(tv) != "" {
				return NormalizeEnv(tv)
			}
		}
	}
	names := s.services()
	for _, ro := range s.roles {
		names = append(names, ro.Role)
	}
	names = append(names, s.hosts...)
	for _, n := range names {
		if env := envFromName(n); env != "" {
			return env
		}
	}
	return ""
}

// NormalizeEnv lower-cases an environment name and maps common spellings to
// production, staging and development.
func NormalizeEnv(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if env, ok := envAliases[s]; ok {
		return env
	}
	return s
}

var envAliases = map[string]string{
	"prod": "production", "prd": "production", "production": "production", "live": "production",
	"stg": "staging", "stage": "staging", "staging": "staging",
	"dev": "development", "develop": "development", "development": "development",
}

// envFromName finds an environment token in a name such as "shop-stg" or
// "Shop: prod-web"; tokens are split at anything but letters and digits.
func envFromName(name string) string {
	for _, tok := range strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if env, ok := envAliases[tok]; ok {
			return env
		}
	}
	return ""
}

// Route decides where a goes. It is pure: same routes, same alert, same
// decision.
func (r *Routes) Route(a Alert) Decision {
	return r.route(alertSubject(a))
}

// RouteNotice decides where a notice goes, with the same rules as alerts
// (rules that list statuses never match a notice). Notices never mention.
func (r *Routes) RouteNotice(n Notice) Decision {
	return r.route(noticeSubject(n))
}

func (r *Routes) route(s subject) Decision {
	env := r.environment(s)
	s.env = env
	if r == nil {
		return Decision{Environment: env, Rule: "none", Note: "no routes configured"}
	}
	for _, rule := range r.Rules {
		if !rule.Match.matches(s) {
			continue
		}
		if rule.Drop && s.source == SourceTokken && !slices.Contains(rule.Match.Sources, SourceTokken) {
			continue // tokken's own alerts are only dropped by name
		}
		d := Decision{Drop: rule.Drop, Channel: rule.Channel, Mention: rule.Mention, Environment: env, Rule: r.ruleName(rule)}
		r.adjust(&d, s, rule.Match.Environments)
		return d
	}
	d := Decision{Channel: r.Default.Channel, Mention: r.Default.Mention, Environment: env, Rule: "default"}
	if ch := r.EnvChannels[env]; env != "" && ch != "" {
		d.Channel = ch
		d.Rule = "default for " + env
	}
	r.adjust(&d, s, nil)
	return d
}

func (r *Routes) ruleName(rule Rule) string {
	switch {
	case rule.Line > 0 && r.File != "":
		return fmt.Sprintf("%s:%d", r.File, rule.Line)
	case rule.Name != "":
		return rule.Name
	}
	return "rule"
}

// adjust applies the mention guarantees to d.
func (r *Routes) adjust(d *Decision, s subject, named []string) {
	if d.Drop {
		d.Mention = ""
		return
	}
	if d.Mention == "" {
		return
	}
	switch {
	case s.isNotice:
		d.Mention, d.Note = "", "mention suppressed: notices never mention"
	case !s.open:
		d.Mention, d.Note = "", "mention suppressed: alert is closed"
	case r.isQuiet(s.env) && !namesLiterally(named, s.env):
		d.Mention, d.Note = "", "mention suppressed: quiet environment "+s.env
	}
}

func (r *Routes) isQuiet(env string) bool {
	if env == "" {
		return false
	}
	quiet := r.Quiet
	if quiet == nil {
		quiet = DefaultQuiet()
	}
	for _, q := range quiet {
		if NormalizeEnv(q) == env {
			return true
		}
	}
	return false
}

// namesLiterally reports whether pats contains env itself (not a wildcard).
func namesLiterally(pats []string, env string) bool {
	for _, p := range pats {
		if !strings.ContainsAny(p, "*?") && NormalizeEnv(p) == env {
			return true
		}
	}
	return false
}

func (m Match) matches(s subject) bool {
	if len(m.Sources) > 0 && !slices.Contains(m.Sources, s.source) {
		return false
	}
	if len(m.Statuses) > 0 && (s.status == "" || !slices.Contains(m.Statuses, s.status)) {
		return false
	}
	return anyMatch(m.Orgs, s.org) &&
		anyMatch(m.Services, s.services()...) &&
		rolesMatch(m.Roles, s.roles) &&
		anyMatch(m.Hosts, s.hosts...) &&
		anyMatch(m.Monitors, s.monitor) &&
		envMatch(m.Environments, s.env)
}

func (e EnvRule) matches(s subject) bool {
	if len(e.Orgs)+len(e.Services)+len(e.Roles)+len(e.Hosts)+len(e.Accounts)+len(e.Tags) == 0 {
		return false // an environment rule without conditions would claim everything
	}
	if !anyMatch(e.Orgs, s.org) || !anyMatch(e.Services, s.services()...) ||
		!rolesMatch(e.Roles, s.roles) || !anyMatch(e.Hosts, s.hosts...) || !anyMatch(e.Accounts, s.account) {
		return false
	}
	for k, pat := range e.Tags {
		found := false
		for tk, tv := range s.tags {
			if strings.EqualFold(tk, k) && Glob(pat, tv) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func envMatch(pats []string, env string) bool {
	if len(pats) == 0 {
		return true
	}
	for _, p := range pats {
		if Glob(NormalizeEnv(p), env) {
			return true
		}
	}
	return false
}

// anyMatch is true when pats is empty or some pattern matches some value.
func anyMatch(pats []string, vals ...string) bool {
	if len(pats) == 0 {
		return true
	}
	for _, p := range pats {
		for _, v := range vals {
			if v != "" && Glob(p, v) {
				return true
			}
		}
	}
	return false
}

func rolesMatch(pats []string, roles []Role) bool {
	if len(pats) == 0 {
		return true
	}
	for _, p := range pats {
		svc, role, full := strings.Cut(p, ":")
		for _, r := range roles {
			if full {
				if Glob(strings.TrimSpace(svc), r.Service) && Glob(strings.TrimSpace(role), r.Role) {
					return true
				}
			} else if Glob(p, r.Role) {
				return true
			}
		}
	}
	return false
}

// Glob reports whether s matches pattern, case-insensitively, where *
// matches any run of characters (including none) and ? exactly one. There
// is no escaping: route patterns never need a literal * or ?.
func Glob(pattern, s string) bool {
	p := []rune(strings.ToLower(pattern))
	v := []rune(strings.ToLower(s))
	// Iterative matcher with single-star backtracking: linear in practice,
	// never exponential on adversarial patterns.
	pi, vi := 0, 0
	star, mark := -1, 0
	for vi < len(v) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == v[vi]):
			pi++
			vi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, vi
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			vi = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
