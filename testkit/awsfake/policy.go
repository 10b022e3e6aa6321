package awsfake

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// PolicyRequest is one question for [EvaluatePolicy]: may Action be done on
// Resource, with Context holding the request's condition keys and policy
// variables (aws:userid, aws:username, aws:CurrentTime as RFC 3339, ...).
type PolicyRequest struct {
	Action   string
	Resource string
	Context  map[string]string
}

// Decision is the outcome of evaluating one policy document.
type Decision int

// The three outcomes, as IAM names them.
const (
	ImplicitDeny Decision = iota // no statement allows it
	Allowed                      // a statement allows it and none denies it
	ExplicitDeny                 // a statement denies it
)

func (d Decision) String() string {
	switch d {
	case Allowed:
		return "allowed"
	case ExplicitDeny:
		return "explicitly denied"
	}
	return "implicitly denied"
}

// EvaluatePolicy decides req against one identity or session policy, with
// IAM's rules: an explicit Deny wins, else an Allow allows, else it is
// denied. Actions match case-insensitively, resources case-sensitively,
// both with IAM's wildcards (* and ?; here a * may also span the ':'
// between ARN segments, a difference no test's ARNs depend on); ${key}
// policy variables in Resource are replaced from req.Context, and a
// statement whose variable has no value does not apply. Conditions: the
// String, Arn, Date and Bool operators, with or without IfExists, each
// value list ORed and every operator and key ANDed; a negated operator
// holds when its key is absent. NotAction applies a statement to every
// action it does not match. Anything else (NotResource, Principal, set
// operators, other operators) is an error, so that a test cannot pass
// because the evaluator ignored what it does not understand.
func EvaluatePolicy(doc string, req PolicyRequest) (Decision, error) {
	var pol struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal([]byte(doc), &pol); err != nil {
		return ImplicitDeny, fmt.Errorf("awsfake: policy: %w", err)
	}
	var sts []map[string]json.RawMessage
	if err := json.Unmarshal(pol.Statement, &sts); err != nil {
		var one map[string]json.RawMessage
		if err1 := json.Unmarshal(pol.Statement, &one); err1 != nil {
			return ImplicitDeny, fmt.Errorf("awsfake: policy Statement: %w", err)
		}
		sts = []map[string]json.RawMessage{one}
	}
	decision := ImplicitDeny
	for i, st := range sts {
		applies, effect, err := statementApplies(st, req)
		if err != nil {
			return ImplicitDeny, fmt.Errorf("awsfake: policy statement %d: %w", i, err)
		}
		switch {
		case !applies:
		case effect == "Deny":
			return ExplicitDeny, nil
		case effect == "Allow":
			decision = Allowed
		}
	}
	return decision, nil
}

func statementApplies(st map[string]json.RawMessage, req PolicyRequest) (bool, string, error) {
	for k := range st {
		switch k {
		case "Sid", "Effect", "Action", "NotAction", "Resource", "Condition":
		default:
			return false, "", fmt.Errorf("element %s is not evaluated", k)
		}
	}
	var effect string
	if err := json.Unmarshal(st["Effect"], &effect); err != nil || (effect != "Allow" && effect != "Deny") {
		return false, "", fmt.Errorf("Effect %s", st["Effect"])
	}
	actionKey, not := "Action", false
	if _, ok := st["NotAction"]; ok {
		if _, both := st["Action"]; both {
			return false, "", fmt.Errorf("both Action and NotAction")
		}
		actionKey, not = "NotAction", true
	}
	actions, err := stringOrList(st[actionKey])
	if err != nil {
		return false, "", fmt.Errorf("%s: %w", actionKey, err)
	}
	resources, err := stringOrList(st["Resource"])
	if err != nil {
		return false, "", fmt.Errorf("Resource: %w", err)
	}
	matched := false
	for _, a := range actions {
		matched = matched || wildcardMatch(strings.ToLower(a), strings.ToLower(req.Action))
	}
	if matched == not {
		return false, effect, nil
	}
	matched = false
	for _, r := range resources {
		pat, ok, err := substituteVariables(r, req.Context)
		if err != nil {
			return false, "", err
		}
		matched = matched || ok && wildcardMatch(pat, req.Resource)
	}
	if !matched {
		return false, effect, nil
	}
	if len(st["Condition"]) == 0 {
		return true, effect, nil
	}
	var cond map[string]map[string]json.RawMessage
	if err := json.Unmarshal(st["Condition"], &cond); err != nil {
		return false, "", fmt.Errorf("Condition: %w", err)
	}
	for op, kv := range cond {
		for key, raw := range kv {
			vals, err := stringOrList(raw)
			if err != nil {
				return false, "", fmt.Errorf("condition %s %s: %w", op, key, err)
			}
			ok, err := conditionHolds(op, key, vals, req.Context)
			if err != nil {
				return false, "", err
			}
			if !ok {
				return false, effect, nil
			}
		}
	}
	return true, effect, nil
}

var policyVariable = regexp.MustCompile(`\$\{([^}]*)\}`)

// substituteVariables replaces ${key} in s from ctx; ok is false when a key
// has no value (the statement then does not apply). IAM's escapes ${*},
// ${?} and ${$} (literal characters) are not evaluated.
func substituteVariables(s string, ctx map[string]string) (out string, ok bool, err error) {
	ok = true
	out = policyVariable.ReplaceAllStringFunc(s, func(m string) string {
		key := m[2 : len(m)-1]
		if key == "*" || key == "?" || key == "$" {
			err = fmt.Errorf("policy variable %s is not evaluated", m)
		}
		v, found := ctx[key]
		ok = ok && found
		return v
	})
	return out, ok, err
}

func conditionHolds(op, key string, vals []string, ctx map[string]string) (bool, error) {
	base, ifExists := strings.CutSuffix(op, "IfExists")
	got, present := ctx[key]
	negated := strings.Contains(base, "Not")
	if !present {
		return ifExists || negated, nil
	}
	matched := false
	for _, v := range vals {
		var hit bool
		switch base {
		case "StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals":
			hit = got == v
		case "StringLike", "StringNotLike", "ArnLike", "ArnNotLike":
			hit = wildcardMatch(v, got)
		case "Bool":
			hit = strings.EqualFold(got, v)
		case "DateGreaterThan", "DateLessThan":
			g, err1 := time.Parse(time.RFC3339, got)
			w, err2 := time.Parse(time.RFC3339, v)
			if err1 != nil || err2 != nil {
				return false, fmt.Errorf("condition %s %s: dates %q, %q are not RFC 3339", op, key, got, v)
			}
			hit = base == "DateGreaterThan" && g.After(w) || base == "DateLessThan" && g.Before(w)
		default:
			return false, fmt.Errorf("condition operator %s is not evaluated", op)
		}
		matched = matched || hit
	}
	if negated {
		return !matched, nil
	}
	return matched, nil
}
