package policies

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
)

// Limits on what profiles.yaml may say.
const (
	// MaxDuration caps every profile's max_duration. 12h is the longest
	// session IAM allows a role (MaxSessionDuration) and a working day:
	// longer is standing access by another name, which tokken exists to end.
	MaxDuration = 12 * time.Hour
	// MinDuration is the shortest grant: tokken enforces the end to the
	// second with a session policy, so grants shorter than STS's 15 minutes
	// are real, but under a minute is a typo.
	MinDuration = time.Minute
	// MaxApprovals bounds approvals: more is a typo, not a policy.
	MaxApprovals = 10
)

// Length limits checked apart from the patterns below. A bounded repeat
// such as {1,512} compiles to one program state per repetition, and every
// package-level pattern is compiled at process start, so on Lambda each
// such repeat is paid by every cold start: the patterns use
// unbounded repeats and these limits bound the length instead. The
// patterns only match ASCII, so a byte length is a character length.
const (
	// maxName is the longest profile or group name.
	maxName = 63
	// maxRoleName is the longest role path and name an IAM role ARN
	// carries.
	maxRoleName = 512
)

var (
	// nameRE: length ≤ maxName, see validName.
	nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`) })
	// roleARNRE: path+name ≤ maxRoleName, see validRoleARN.
	roleARNRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/([\w+=,.@/-]+)$`)
	})
	slackUserRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`) })
	slackGroupRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^S[A-Z0-9]{2,}$`) })
	channelRE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`) })
	emailRE      = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`) })
	yamlLineRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^line (\d+)`) })
)

// profile is a catalogue entry with what only the policy engine needs.
type profile struct {
	access.Profile
	Env  string // optional environment name, exposed to rules as resource.env
	Line int    // line of the profile's name in profiles.yaml
}

// groupDef is one group of groups.yaml as written.
type groupDef struct {
	Name        string
	Line        int
	Members     []string // Slack user ids
	Emails      []string // lower-cased
	SlackGroups []string // Slack user group ids
	Include     []ref    // groups whose members are members of this one
}

// ref is a name written at a line.
type ref struct {
	Name string
	Line int
}

// parseTop parses a YAML document whose root is a mapping with the single
// key top, and returns top's value (nil when the file is empty).
func parseTop(r report, data []byte, top string) *yaml.Node {
	return parseTops(r, data, top)[top]
}

// topWhat says what a top-level key maps (for "must be a mapping of …").
var topWhat = map[string]string{idcUsersKey: "Slack user ids or e-mails to IAM Identity Center users"}

// parseTops parses a YAML document whose root is a mapping with some of
// the keys tops, each mapping names to definitions, and returns their
// values by key (none when the file is empty; null values are left out).
func parseTops(r report, data []byte, tops ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if m := yamlLineRE().FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = strings.TrimPrefix(msg, m[0]+": ")
		}
		r.at(syntaxErrorLine(data, line), "invalid YAML: %s", msg)
		return out
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return out
	}
	root := deref(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return out
	}
	if root.Kind != yaml.MappingNode {
		if len(tops) == 1 {
			r.at(root.Line, "expected a mapping with key %q", tops[0])
		} else {
			r.at(root.Line, "expected a mapping with keys %s", strings.Join(tops, ", "))
		}
		return out
	}
	eachKey(r, root, func(k, v *yaml.Node) {
		if !slices.Contains(tops, k.Value) {
			r.at(k.Line, "unknown key %q (allowed: %s)", k.Value, strings.Join(tops, ", "))
			return
		}
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		case v.Kind != yaml.MappingNode:
			what, ok := topWhat[k.Value]
			if !ok {
				what = "names to definitions"
			}
			r.at(v.Line, "%s must be a mapping of %s", k.Value, what)
		default:
			out[k.Value] = v
		}
	})
	return out
}

// syntaxErrorLine finds the line of a YAML syntax error. yaml.v3 reports
// the line where the enclosing block began, often far above the mistake,
// so look for the first line at which the document stops parsing; keep
// yaml.v3's line if that finds nothing better.
func syntaxErrorLine(data []byte, reported int) int {
	var scratch yaml.Node
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > 5000 {
		return reported // not a policy file a person wrote; don't spend time on it
	}
	prefix := ""
	for i, l := range lines {
		prefix += l
		if yaml.Unmarshal([]byte(prefix), &scratch) != nil {
			return max(i+1, reported)
		}
	}
	return reported
}

// deref follows a YAML alias once.
func deref(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// eachKey calls fn for each key of a mapping, reporting duplicate and
// non-scalar keys instead.
func eachKey(r report, m *yaml.Node, fn func(k, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := deref(m.Content[i]), deref(m.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			r.at(k.Line, "keys must be plain names")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			r.at(k.Line, "duplicate key %q (first at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		fn(k, v)
	}
}

// keyLine is the line of key in mapping m.
func keyLine(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := deref(m.Content[i]); k.Value == key {
			return k.Line
		}
	}
	return m.Line
}

// fields checks a definition's keys against the allowed ones and returns
// the values by key.
func fields(r report, what string, n *yaml.Node, allowed []string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return out
	}
	if n.Kind != yaml.MappingNode {
		r.at(n.Line, "%s must be a mapping", what)
		return out
	}
	eachKey(r, n, func(k, v *yaml.Node) {
		for _, a := range allowed {
			if k.Value == a {
				out[a] = v
				return
			}
		}
		r.at(k.Line, "unknown key %q in %s (allowed: %s)", k.Value, what, strings.Join(allowed, ", "))
	})
	return out
}

// str returns a scalar's string value, reporting anything else.
func str(r report, key string, n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		r.at(n.Line, "%s must be a single value", key)
		return "", false
	}
	return n.Value, true
}

// list returns a sequence's scalar items (a single scalar counts as a
// one-item list), reporting anything else.
func list(r report, key string, n *yaml.Node) []*yaml.Node {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []*yaml.Node{n}
	}
	if n.Kind != yaml.SequenceNode {
		r.at(n.Line, "%s must be a list", key)
		return nil
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, it := range n.Content {
		it = deref(it)
		if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
			r.at(it.Line, "%s items must be single values", key)
			continue
		}
		out = append(out, it)
	}
	return out
}

// duration parses a Go duration (10m, 1h30m) within [MinDuration, MaxDuration]
// in whole minutes.
func duration(r report, key string, n *yaml.Node) (time.Duration, bool) {
	s, ok := str(r, key, n)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		r.at(n.Line, "%s %q is not a duration (write it like 10m, 1h or 1h30m)", key, s)
	case d < MinDuration:
		r.at(n.Line, "%s %q is shorter than the minimum %s", key, s, fmtDuration(MinDuration))
	case d > MaxDuration:
		r.at(n.Line, "%s %q exceeds the maximum %s", key, s, fmtDuration(MaxDuration))
	case d%time.Minute != 0:
		r.at(n.Line, "%s %q is not a whole number of minutes", key, s)
	default:
		return d, true
	}
	return 0, false
}

var profileKeys = []string{
	"description", "kind", "env", "role_arn", "instances", "ecs", "default_duration", "max_duration",
	"presets", "approvals", "approver_channel", "break_glass", "session_policy",
	"accounts", "permission_set", "group",
}

// parseProfiles reads profiles.yaml: a mapping "profiles" of profile names
// to definitions, kept in file order.
func parseProfiles(r report, data []byte) []profile {
	top := parseTop(r, data, "profiles")
	if top == nil {
		return nil
	}
	var out []profile
	eachKey(r, top, func(k, v *yaml.Node) {
		if !validName(k.Value) {
			r.at(k.Line, "profile name %q must be lower-case letters, digits and dashes (1-%d, not starting with a dash)", k.Value, maxName)
			return
		}
		if p, ok := parseProfile(r, k, v); ok {
			out = append(out, p)
		}
	})
	return out
}

func parseProfile(r report, k, v *yaml.Node) (profile, bool) {
	before := len(*r.probs)
	what := "profile " + strconv.Quote(k.Value)
	p := profile{Line: k.Line}
	p.Name = k.Value
	f := fields(r, what, v, profileKeys)
	if n := f["description"]; n != nil {
		p.Description, _ = str(r, "description", n)
	}
	if n := f["env"]; n != nil {
		p.Env, _ = str(r, "env", n)
	}
	if n := f["kind"]; n == nil {
		r.at(k.Line, "%s: missing kind (sts, ssm, ecs-exec or identity-center)", what)
	} else if s, ok := str(r, "kind", n); ok {
		switch access.Kind(s) {
		case access.KindSTS, access.KindSSM, access.KindECSExec, access.KindIdentityCenter:
			p.Kind = access.Kind(s)
		default:
			r.at(n.Line, "unknown kind %q (allowed: sts, ssm, ecs-exec, identity-center)", s)
		}
	}
	if n := f["role_arn"]; n == nil && p.Kind != access.KindIdentityCenter {
		r.at(k.Line, "%s: missing role_arn", what)
	} else if n == nil || p.Kind == access.KindIdentityCenter {
		// identity-center profiles have no role (checkIDC reports one).
	} else if s, ok := str(r, "role_arn", n); ok {
		if validRoleARN(s) {
			p.RoleARN = s
		} else {
			r.at(n.Line, "role_arn %q is not an IAM role ARN (arn:aws:iam::123456789012:role/name)", s)
		}
	}
	if n := f["instances"]; n != nil {
		p.Instances = parseInstances(r, keyLine(v, "instances"), n)
	}
	switch {
	case p.Kind == access.KindSSM && len(p.Instances.IDs) == 0 && len(p.Instances.Tags) == 0 && f["instances"] == nil:
		r.at(k.Line, "%s: ssm profiles need instances (ids or tags)", what)
	case p.Kind != access.KindSSM && p.Kind != "" && f["instances"] != nil:
		r.at(f["instances"].Line, "instances only apply to ssm profiles; %s is %s", what, p.Kind)
	}
	checkECS(r, what, k, v, f, &p)
	checkIDC(r, what, k, f, &p)
	if n := f["max_duration"]; n == nil {
		r.at(k.Line, "%s: missing max_duration", what)
	} else {
		p.MaxDuration, _ = duration(r, "max_duration", n)
	}
	if n := f["default_duration"]; n != nil {
		if d, ok := duration(r, "default_duration", n); ok {
			p.DefaultDuration = d
			if p.MaxDuration > 0 && d > p.MaxDuration {
				r.at(f["max_duration"].Line, "max_duration %q is less than default_duration %q",
					f["max_duration"].Value, n.Value)
			}
		}
	} else {
		p.DefaultDuration = min(p.MaxDuration, time.Hour)
	}
	if n := f["presets"]; n != nil {
		for _, it := range list(r, "presets", n) {
			d, ok := duration(r, "preset", it)
			if !ok {
				continue
			}
			if p.MaxDuration > 0 && d > p.MaxDuration {
				r.at(it.Line, "preset %q exceeds max_duration %q", it.Value, f["max_duration"].Value)
				continue
			}
			p.Presets = append(p.Presets, d)
		}
	}
	if n := f["approvals"]; n != nil {
		s, ok := str(r, "approvals", n)
		a, err := strconv.Atoi(s)
		switch {
		case !ok:
		case err != nil:
			r.at(n.Line, "approvals %q is not a whole number", s)
		case a < 0:
			r.at(n.Line, "approvals %d is negative (0 means no approval needed)", a)
		case a > MaxApprovals:
			r.at(n.Line, "approvals %d exceeds the maximum %d", a, MaxApprovals)
		default:
			p.Approvals = a
		}
	}
	if n := f["approver_channel"]; n != nil {
		if s, ok := str(r, "approver_channel", n); ok {
			if channelRE().MatchString(s) {
				p.ApproverChannel = s
			} else {
				r.at(n.Line, "approver_channel %q is not a Slack channel id (C… or G…)", s)
			}
		}
	}
	if n := f["break_glass"]; n != nil {
		if s, ok := str(r, "break_glass", n); ok {
			b, err := strconv.ParseBool(s)
			if err != nil || n.Tag != "!!bool" {
				r.at(n.Line, "break_glass %q must be true or false", s)
			}
			p.BreakGlass = b
		}
	}
	if n := f["session_policy"]; n != nil {
		if s, ok := str(r, "session_policy", n); ok {
			var doc map[string]any
			if err := json.Unmarshal([]byte(s), &doc); err != nil {
				r.at(n.Line, "session_policy is not a JSON object: %v", err)
			} else if _, ok := doc["Statement"]; !ok {
				r.at(n.Line, "session_policy has no Statement")
			} else {
				p.SessionPolicy = s
			}
		}
	}
	return p, len(*r.probs) == before
}

func parseInstances(r report, line int, n *yaml.Node) access.InstanceSelector {
	var sel access.InstanceSelector
	f := fields(r, "instances", n, []string{"ids", "tags"})
	if ids := f["ids"]; ids != nil {
		for _, it := range list(r, "ids", ids) {
			if !bot.IsInstanceID(it.Value) {
				r.at(it.Line, "%q is not an EC2 instance id (i-0123456789abcdef0)", it.Value)
				continue
			}
			sel.IDs = append(sel.IDs, it.Value)
		}
	}
	if tags := f["tags"]; tags != nil {
		if tags.Kind != yaml.MappingNode {
			r.at(tags.Line, "tags must be a mapping of tag keys to values")
		} else {
			sel.Tags = map[string]string{}
			eachKey(r, tags, func(k, v *yaml.Node) {
				if s, ok := str(r, "tag "+strconv.Quote(k.Value), v); ok {
					sel.Tags[k.Value] = s
				}
			})
		}
	}
	if len(sel.IDs) == 0 && len(sel.Tags) == 0 {
		r.at(line, "instances selects nothing: give ids or tags")
	}
	return sel
}

// parseGroups reads groups.yaml: a mapping "groups" of group names to
// members (Slack user ids or e-mails), Slack user groups and included
// groups; and the mapping identity_center_users (see parseIDCUsers).
func parseGroups(r report, data []byte) ([]groupDef, map[string]string) {
	tops := parseTops(r, data, "groups", idcUsersKey)
	var users map[string]string
	if n := tops[idcUsersKey]; n != nil {
		users = parseIDCUsers(r, n)
	}
	top := tops["groups"]
	if top == nil {
		return nil, users
	}
	var out []groupDef
	eachKey(r, top, func(k, v *yaml.Node) {
		if !validName(k.Value) {
			r.at(k.Line, "group name %q must be lower-case letters, digits and dashes (1-%d, not starting with a dash)", k.Value, maxName)
			return
		}
		g := groupDef{Name: k.Value, Line: k.Line}
		f := fields(r, "group "+strconv.Quote(k.Value), v, []string{"description", "members", "slack_usergroups", "include"})
		if n := f["description"]; n != nil {
			str(r, "description", n)
		}
		if n := f["members"]; n != nil {
			for _, it := range list(r, "members", n) {
				switch {
				case slackUserRE().MatchString(it.Value):
					g.Members = append(g.Members, it.Value)
				case emailRE().MatchString(it.Value):
					g.Emails = append(g.Emails, strings.ToLower(it.Value))
				default:
					r.at(it.Line, "member %q is neither a Slack user id (U…/W…) nor an e-mail address", it.Value)
				}
			}
		}
		if n := f["slack_usergroups"]; n != nil {
			for _, it := range list(r, "slack_usergroups", n) {
				if !slackGroupRE().MatchString(it.Value) {
					r.at(it.Line, "%q is not a Slack user group id (S…)", it.Value)
					continue
				}
				g.SlackGroups = append(g.SlackGroups, it.Value)
			}
		}
		if n := f["include"]; n != nil {
			for _, it := range list(r, "include", n) {
				g.Include = append(g.Include, ref{Name: it.Value, Line: it.Line})
			}
		}
		out = append(out, g)
	})
	return out, users
}

// validName reports whether s can name a profile or a group: 1 to maxName
// lower-case letters, digits and dashes, not starting with a dash.
func validName(s string) bool {
	return len(s) <= maxName && nameRE().MatchString(s)
}

// validRoleARN reports whether s is an IAM role ARN whose path and name fit
// IAM's limit: 1 to maxRoleName of letters, digits, _ + = , . @ / -.
func validRoleARN(s string) bool {
	m := roleARNRE().FindStringSubmatch(s)
	return m != nil && len(m[1]) <= maxRoleName
}
