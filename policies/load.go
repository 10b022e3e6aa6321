package policies

import (
	_ "embed" // the Cedar schema is compiled in
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"github.com/tokken/tokken/bot"
)

// Files Load reads from a policy directory. Other files (README.md,
// the schema copy, routes.yaml: see LoadRoutes) are not its business.
const (
	ProfilesFile = "profiles.yaml"
	GroupsFile   = "groups.yaml"
	RulesGlob    = "*.cedar"
)

// schemaText is tokken's Cedar schema, the contract between rules and the
// engine (see tokken.cedarschema).
//
//go:embed tokken.cedarschema
var schemaText string

// Cedar entity types and the action type of tokken's schema.
const (
	typeUser     = cedar.EntityType("Tokken::User")
	typeGroup    = cedar.EntityType("Tokken::Group")
	typeProfile  = cedar.EntityType("Tokken::Profile")
	typeInstance = cedar.EntityType("Tokken::Instance")
	typeAlert    = cedar.EntityType("Tokken::Alert")
	typeAction   = cedar.EntityType("Tokken::Action")
)

// Annotations a rule may carry.
const (
	annotID        = "id"        // a short name shown with the rule's position
	annotReason    = "reason"    // text shown to the user when the rule decides
	annotApprovals = "approvals" // approvals a permit requires (domain actions; raises a profile's)
)

// rule is one Cedar policy with where it came from.
type rule struct {
	ID        cedar.PolicyID // "policies/access.cedar:12"
	File      string
	Line      int
	Forbid    bool
	Name      string // @id
	Reason    string // @reason
	Approvals int    // @approvals
	Text      string // the policy's source text
}

// Set is a loaded, validated policy directory: the profile catalogue, the
// groups and the Cedar rules. It implements bot.Authorizer and
// access.Catalogue and is immutable after Load, so one Set may serve any
// number of goroutines; to change policy, Load a new Set and swap it in.
type Set struct {
	profiles []profile
	byName   map[string]int
	groups   []string // sorted names
	// Direct group memberships by Slack user id, lower-cased e-mail and
	// Slack user group id.
	byUser, byEmail, bySlack map[string][]cedar.EntityUID
	// idcUsers maps Slack user ids and lower-cased e-mails to IAM Identity
	// Center user names or e-mails (identity_center_users).
	idcUsers map[string]string
	// static holds the Group and Profile entities.
	static   cedar.EntityMap
	policies cedar.PolicyMap
	rules    map[cedar.PolicyID]*rule
}

// Load reads and validates the policy directory dir (profiles.yaml,
// groups.yaml, *.cedar). On any problem it returns a nil Set and a
// Problems error listing every problem with its file and line.
func Load(dir string) (*Set, error) {
	s, probs := loadFS(os.DirFS(dir), dir)
	if len(probs) > 0 {
		return nil, probs
	}
	return s, nil
}

// Check validates the policy directory dir offline, as `tokken policy
// check` does, and returns every problem found (none when it is valid).
//
// Check also validates the alert routes (routes.yaml) when the directory
// has them, so that one command vouches for the whole directory.
func Check(dir string) []Problem {
	_, probs := loadFS(os.DirFS(dir), dir)
	probs = append(probs, checkRoutes(dir)...)
	return append(probs, checkPipelines(dir)...)
}

// checkRoutes reports the problems of dir/routes.yaml, if there is one.
func checkRoutes(dir string) Problems {
	file := filepath.Join(dir, RoutesFile)
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return Problems{{File: file, Msg: fmt.Sprintf("read: %v", err)}}
	}
	if _, err := ParseRoutes(file, data); err != nil {
		var probs Problems
		if errors.As(err, &probs) {
			return probs
		}
		return Problems{{File: file, Msg: err.Error()}}
	}
	return nil
}

// loadFS loads a policy directory from fsys; dir is only used to name files
// in problems and reasons.
func loadFS(fsys fs.FS, dir string) (*Set, Problems) {
	var probs Problems
	s := &Set{
		byName:  map[string]int{},
		byUser:  map[string][]cedar.EntityUID{},
		byEmail: map[string][]cedar.EntityUID{},
		bySlack: map[string][]cedar.EntityUID{},
		static:  cedar.EntityMap{},
	}
	read := func(name string) ([]byte, report, bool) {
		r := report{file: filepath.Join(dir, name), probs: &probs}
		data, err := fs.ReadFile(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, r, false
		}
		if err != nil {
			r.at(0, "read: %v", err)
			return nil, r, false
		}
		return data, r, true
	}

	if probs := checkDir(fsys, dir); len(probs) > 0 {
		return nil, probs
	}
	if data, r, ok := read(ProfilesFile); ok {
		s.profiles = parseProfiles(r, data)
	}
	for i, p := range s.profiles {
		s.byName[p.Name] = i
		uid := cedar.NewEntityUID(typeProfile, cedar.String(p.Name))
		s.static[uid] = cedar.Entity{UID: uid, Attributes: profileAttrs(p)}
	}
	if data, r, ok := read(GroupsFile); ok {
		defs, users := parseGroups(r, data)
		s.addGroups(r, defs)
		s.idcUsers = users
	}

	names, err := fs.Glob(fsys, RulesGlob)
	if err != nil {
		probs = append(probs, Problem{File: dir, Msg: fmt.Sprintf("list rules: %v", err)})
	}
	if len(names) == 0 {
		probs = append(probs, Problem{File: dir, Msg: "no *.cedar rules: every action would be denied"})
	}
	v, err := newValidator()
	if err != nil {
		// The schema is compiled in; failing here is a bug in tokken.
		probs = append(probs, Problem{File: "tokken.cedarschema", Msg: err.Error()})
		return nil, probs
	}
	s.policies = cedar.PolicyMap{}
	s.rules = map[cedar.PolicyID]*rule{}
	ruleIDs := map[string]string{} // @id -> position
	for _, name := range names {
		data, r, ok := read(name)
		if ok {
			s.addRules(r, v, data, ruleIDs)
		}
	}
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool {
			if probs[i].File != probs[j].File {
				return probs[i].File < probs[j].File
			}
			return probs[i].Line < probs[j].Line
		})
		return nil, probs
	}
	return s, nil
}

// checkDir reports a policy directory that is missing or holds none of
// the policy files, naming what was looked for: the usual cause is a
// command run from another folder than the one holding policies/, which
// must not read as "every action would be denied".
func checkDir(fsys fs.FS, dir string) Problems {
	const hint = "run tokken where the policy directory is (the repository root for the example in policies/), or set TOKKEN_POLICY_DIR (--dir for tokken policy)"
	info, err := fs.Stat(fsys, ".")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Problems{{File: dir, Msg: "no such directory: " + hint}}
	case err != nil:
		return Problems{{File: dir, Msg: fmt.Sprintf("read: %v", err)}}
	case !info.IsDir():
		return Problems{{File: dir, Msg: "not a directory: " + hint}}
	}
	rules, _ := fs.Glob(fsys, RulesGlob)
	if len(rules) > 0 {
		return nil
	}
	for _, name := range []string{ProfilesFile, GroupsFile} {
		if _, err := fs.Stat(fsys, name); err == nil {
			return nil
		}
	}
	return Problems{{File: dir, Msg: fmt.Sprintf("not a policy directory: no %s, %s or %s files in it; %s", ProfilesFile, GroupsFile, RulesGlob, hint)}}
}

func newValidator() (*validate.Validator, error) {
	var sch schema.Schema
	sch.SetFilename("tokken.cedarschema")
	if err := sch.UnmarshalCedar([]byte(schemaText)); err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	res, err := sch.Resolve()
	if err != nil {
		return nil, fmt.Errorf("resolve schema: %w", err)
	}
	return validate.New(res), nil
}

func profileAttrs(p profile) cedar.Record {
	return cedar.NewRecord(cedar.RecordMap{
		"kind":            cedar.String(p.Kind),
		"env":             cedar.String(p.Env),
		"cluster":         cedar.String(p.ECS.ClusterName()),
		"service":         cedar.String(""),
		"account":         cedar.String(idcAccount(p)),
		"permission_set":  cedar.String(p.IDC.PermissionSet),
		"approvals":       cedar.Long(p.Approvals),
		"break_glass":     cedar.Boolean(p.BreakGlass),
		"default_minutes": cedar.Long(p.DefaultDuration.Minutes()),
		"max_minutes":     cedar.Long(p.MaxDuration.Minutes()),
	})
}

// addGroups resolves includes, rejects unknown references and cycles, and
// indexes memberships.
func (s *Set) addGroups(r report, defs []groupDef) {
	byName := map[string]*groupDef{}
	for i := range defs {
		byName[defs[i].Name] = &defs[i]
		s.groups = append(s.groups, defs[i].Name)
	}
	slices.Sort(s.groups)
	parents := map[string][]cedar.EntityUID{} // group -> groups including it
	for _, g := range defs {
		for _, inc := range g.Include {
			switch {
			case byName[inc.Name] == nil:
				r.at(inc.Line, "group %q includes unknown group %q (known: %s)", g.Name, inc.Name, strings.Join(s.groups, ", "))
			case inc.Name == g.Name:
				r.at(inc.Line, "group %q includes itself", g.Name)
			default:
				parents[inc.Name] = append(parents[inc.Name], groupUID(g.Name))
			}
		}
	}
	// Cycles: walk includes depth-first; report at the include that closes one.
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var visit func(g *groupDef, path []string)
	visit = func(g *groupDef, path []string) {
		state[g.Name] = active
		for _, inc := range g.Include {
			next := byName[inc.Name]
			if next == nil || next == g {
				continue
			}
			switch state[inc.Name] {
			case active:
				r.at(inc.Line, "group include cycle: %s -> %s", strings.Join(append(path, g.Name), " -> "), inc.Name)
			case unseen:
				visit(next, append(path, g.Name))
			}
		}
		state[g.Name] = done
	}
	for i := range defs {
		if state[defs[i].Name] == unseen {
			visit(&defs[i], nil)
		}
	}
	for _, g := range defs {
		uid := groupUID(g.Name)
		s.static[uid] = cedar.Entity{UID: uid, Parents: cedar.NewEntityUIDSet(parents[g.Name]...)}
		for _, m := range g.Members {
			s.byUser[m] = append(s.byUser[m], uid)
		}
		for _, e := range g.Emails {
			s.byEmail[e] = append(s.byEmail[e], uid)
		}
		for _, sg := range g.SlackGroups {
			s.bySlack[sg] = append(s.bySlack[sg], uid)
		}
	}
}

func groupUID(name string) cedar.EntityUID {
	return cedar.NewEntityUID(typeGroup, cedar.String(name))
}

var (
	cedarPosRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`<input>:(\d+):(\d+)`) })
	cedarExactRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`exact got (.*) want (.*)$`) })
)

// addRules parses one Cedar file, validates each policy against the schema
// and the loaded profiles and groups, and adds the valid ones.
func (s *Set) addRules(r report, v *validate.Validator, data []byte, ids map[string]string) {
	list, err := cedar.NewPolicyListFromBytes(r.file, data)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "parser error: ")
		line := 0
		if m := cedarPosRE().FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = strings.Replace(msg, "parse error at "+m[0], "Cedar syntax error at column "+m[2], 1)
			msg = strings.Replace(msg, `column `+m[2]+` "": `, "end of file: ", 1)
		}
		if m := cedarExactRE().FindStringSubmatch(msg); m != nil {
			msg = strings.Replace(msg, m[0], fmt.Sprintf("expected %q", m[2]), 1)
		}
		r.at(line, "%s", msg)
		return
	}
	src := string(data)
	for i, p := range list {
		pos := p.Position()
		end := len(src)
		if i+1 < len(list) {
			end = list[i+1].Position().Offset
		}
		start := min(max(pos.Offset, 0), end)
		ru := &rule{
			File:   r.file,
			Line:   pos.Line,
			Forbid: p.Effect() == cedar.Forbid,
			Text:   strings.TrimSpace(stripTrailingComments(src[start:end])),
		}
		text := src[start:end]
		lineOf := func(needle string) int {
			if k := strings.Index(text, needle); k >= 0 {
				return pos.Line + strings.Count(text[:k], "\n")
			}
			return pos.Line
		}
		before := len(*r.probs)
		s.checkAnnotations(r, p, ru, ids)
		ast := (*xast.Policy)(p.AST())
		if err := v.Policy("", ast); err != nil {
			for _, e := range flatten(err) {
				msg := e.Error()
				line := pos.Line
				if m := backtickRE().FindStringSubmatch(msg); m != nil {
					line = lineOf(m[1])
				}
				r.at(line, "%s", msg)
			}
		}
		for _, uid := range entityRefs(ast) {
			s.checkRef(r, uid, lineOf)
		}
		if len(*r.probs) > before {
			continue
		}
		id := cedar.PolicyID(fmt.Sprintf("%s:%d", r.file, pos.Line))
		for n := 2; s.rules[id] != nil; n++ {
			id = cedar.PolicyID(fmt.Sprintf("%s:%d#%d", r.file, pos.Line, n))
		}
		ru.ID = id
		s.rules[id] = ru
		s.policies[id] = p
	}
}

var backtickRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("`([^`]+)`") })

// stripTrailingComments drops comment lines after a policy's final
// semicolon: they introduce the next policy.
func stripTrailingComments(text string) string {
	if k := strings.LastIndex(text, ";"); k >= 0 {
		return text[:k+1]
	}
	return text
}

func flatten(err error) []error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range u.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func (s *Set) checkAnnotations(r report, p *cedar.Policy, ru *rule, ids map[string]string) {
	// In source order, so that problems come out in a stable order.
	for _, a := range (*xast.Policy)(p.AST()).Annotations {
		k, val := a.Key, a.Value
		switch k {
		case annotID:
			ru.Name = string(val)
			here := fmt.Sprintf("%s:%d", r.file, ru.Line)
			if prev, dup := ids[ru.Name]; dup {
				r.at(ru.Line, "@id(%q) is already used at %s", ru.Name, prev)
			} else {
				ids[ru.Name] = here
			}
		case annotReason:
			ru.Reason = string(val)
		case annotApprovals:
			n, err := strconv.Atoi(string(val))
			switch {
			case err != nil || n < 0 || n > MaxApprovals:
				r.at(ru.Line, "@approvals(%q) must be a whole number from 0 to %d", string(val), MaxApprovals)
			case ru.Forbid:
				r.at(ru.Line, "@approvals on a forbid rule means nothing: forbid always denies")
			default:
				ru.Approvals = n
			}
		default:
			r.at(ru.Line, "unknown annotation @%s (allowed: @id, @reason, @approvals)", k)
		}
	}
}

// checkRef rejects references to groups and profiles that do not exist and
// to users or instances by something other than their id.
func (s *Set) checkRef(r report, uid types.EntityUID, lineOf func(string) int) {
	id := string(uid.ID)
	at := lineOf(strconv.Quote(id))
	switch uid.Type {
	case typeGroup:
		if _, ok := s.static[uid]; !ok {
			r.at(at, "unknown group %q (groups.yaml defines: %s)", id, listOrNone(s.groups))
		}
	case typeProfile:
		if _, ok := s.byName[id]; !ok {
			r.at(at, "unknown profile %q (profiles.yaml defines: %s)", id, listOrNone(s.profileNames()))
		}
	case typeUser:
		if !slackUserRE().MatchString(id) {
			r.at(at, "user %q is not a Slack user id (U…/W…); put e-mails in groups.yaml", id)
		}
	case typeInstance:
		if !bot.IsInstanceID(id) {
			r.at(at, "%q is not an EC2 instance id", id)
		}
	}
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func (s *Set) profileNames() []string {
	out := make([]string, len(s.profiles))
	for i, p := range s.profiles {
		out[i] = p.Name
	}
	return out
}

// entityRefs lists the entity literals a policy names, in its scope and
// conditions.
func entityRefs(p *xast.Policy) []types.EntityUID {
	var out []types.EntityUID
	for _, sc := range []any{p.Principal, p.Action, p.Resource} {
		switch sc := sc.(type) {
		case xast.ScopeTypeEq:
			out = append(out, sc.Entity)
		case xast.ScopeTypeIn:
			out = append(out, sc.Entity)
		case xast.ScopeTypeIsIn:
			out = append(out, sc.Entity)
		case xast.ScopeTypeInSet:
			out = append(out, sc.Entities...)
		}
	}
	var fromValue func(v types.Value)
	fromValue = func(v types.Value) {
		switch v := v.(type) {
		case types.EntityUID:
			out = append(out, v)
		case types.Set:
			for e := range v.All() {
				fromValue(e)
			}
		}
	}
	for _, c := range p.Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(n xast.IsNode) bool {
			if nv, ok := n.(xast.NodeValue); ok {
				fromValue(nv.Value)
			}
			return true
		})
	}
	return out
}
