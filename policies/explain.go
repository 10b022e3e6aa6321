package policies

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/tokken/tokken/bot"
)

// Explanation is a decision with everything that went into it, for people:
// `tokken policy explain` prints it.
type Explanation struct {
	Query    bot.AuthzQuery
	Decision bot.Decision // with Approvals: how many approvals an allowed action needs
	// Groups are the principal's groups, direct and included, sorted.
	Groups []string
	// Context is the Cedar context the rules saw, one "name: value" each.
	Context []string
	// Refusals are the catalogue's own limits the query broke.
	Refusals []string
	// Matched are the rules whose scope and conditions hold for the query,
	// permits and forbids alike, in file order, per resource.
	Matched []MatchedRule
	// Errors are rules that failed to evaluate (a forbid that fails denies).
	Errors []string
	// Err is set when the query itself is malformed; nothing else is.
	Err error
}

// MatchedRule is a rule that applies to the query.
type MatchedRule struct {
	Resource string // e.g. `profile "prod-ssm"`
	Rule     string // e.g. `forbid policies/hours.cedar:7 (prod-working-hours): …`
	Text     string // the rule's source
}

// Explain answers q like Authorize and says why, listing every rule that
// matches (not only the ones Cedar needed to decide).
func Explain(set *Set, q bot.AuthzQuery) Explanation {
	ex := Explanation{Query: q}
	ev, err := set.evaluate(q)
	if err != nil {
		ex.Err = err
		return ex
	}
	o := ev.outcome()
	ex.Decision = o
	ex.Refusals = ev.refusals
	ex.Groups = set.groupsOf(ev.principal)
	rec := ev.context
	for _, k := range slices.Sorted(maps.Keys(rec.Map())) {
		v, _ := rec.Get(k)
		ex.Context = append(ex.Context, fmt.Sprintf("%s: %s", k, v.MarshalCedar()))
	}
	action := cedar.NewEntityUID(typeAction, cedar.String(q.Action))
	ids := slices.SortedFunc(maps.Keys(set.rules), func(a, b cedar.PolicyID) int {
		return byPosition(set.rules[a], set.rules[b])
	})
	for _, r := range ev.results {
		req := cedar.Request{Principal: ev.principal.UID, Action: action, Resource: r.resource, Context: rec}
		for _, id := range ids {
			one := cedar.PolicyMap{id: set.policies[id]}
			_, diag := cedar.Authorize(one, ev.ents, req)
			if len(diag.Reasons) > 0 {
				ru := set.rules[id]
				ex.Matched = append(ex.Matched, MatchedRule{Resource: describeUID(r.resource), Rule: ru.describe(), Text: ru.Text})
			}
		}
		ex.Errors = append(ex.Errors, r.errors...)
	}
	return ex
}

// groupsOf lists the groups an entity is in, following includes.
func (s *Set) groupsOf(e cedar.Entity) []string {
	seen := map[cedar.EntityUID]bool{}
	queue := slices.Collect(e.Parents.All())
	for len(queue) > 0 {
		uid := queue[0]
		queue = queue[1:]
		if seen[uid] {
			continue
		}
		seen[uid] = true
		if g, ok := s.static[uid]; ok {
			queue = append(queue, slices.Collect(g.Parents.All())...)
		}
	}
	out := make([]string, 0, len(seen))
	for uid := range seen {
		out = append(out, string(uid.ID))
	}
	slices.Sort(out)
	return out
}

// String renders the explanation for a terminal.
func (ex Explanation) String() string {
	var b strings.Builder
	q := ex.Query
	if ex.Err != nil {
		fmt.Fprintf(&b, "error: %v\n", ex.Err)
		return b.String()
	}
	verdict := "DENY"
	if ex.Decision.Allow {
		verdict = "ALLOW"
	}
	fmt.Fprintf(&b, "%s: %s %s", verdict, q.Principal.ID, q.Action)
	if q.Profile != "" {
		fmt.Fprintf(&b, " %s", q.Profile)
	}
	for _, t := range q.Targets {
		fmt.Fprintf(&b, " %s", t.ID)
	}
	if q.Duration > 0 {
		fmt.Fprintf(&b, " for %s", fmtDuration(q.Duration))
	}
	b.WriteString("\n")
	if ex.Decision.Allow && ex.Decision.Approvals > 0 {
		fmt.Fprintf(&b, "needs %d approval(s) from someone other than the requester\n", ex.Decision.Approvals)
	}
	b.WriteString("\nbecause:\n")
	for _, r := range ex.Decision.Reasons {
		fmt.Fprintf(&b, "  - %s\n", r)
	}
	groups := "none"
	if len(ex.Groups) > 0 {
		groups = strings.Join(ex.Groups, ", ")
	}
	fmt.Fprintf(&b, "\nprincipal %s is in groups: %s\n", q.Principal.ID, groups)
	b.WriteString("context:\n")
	for _, c := range ex.Context {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	if len(ex.Matched) == 0 {
		b.WriteString("\nno rule matches.\n")
	} else {
		b.WriteString("\nmatching rules:\n")
		for _, m := range ex.Matched {
			fmt.Fprintf(&b, "  on %s: %s\n", m.Resource, m.Rule)
			for _, line := range strings.Split(m.Text, "\n") {
				fmt.Fprintf(&b, "      %s\n", line)
			}
		}
	}
	if len(ex.Errors) > 0 {
		b.WriteString("\nrules that failed to evaluate:\n")
		for _, e := range ex.Errors {
			fmt.Fprintf(&b, "  - %s\n", e)
		}
	}
	return b.String()
}
