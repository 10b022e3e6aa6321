package awsfake

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
)

// IAMService is the credential-scope service name of IAM; it is also the
// service key of [Call], [Fake.Fail] and [Fake.SetLatency] for IAM calls.
const IAMService = "iam"

// MaxRolePolicySize is IAM's limit on the aggregate size of a role's inline
// policies, counted in characters without whitespace.
const MaxRolePolicySize = 10240

// IAM fakes the role APIs of AWS Identity and Access Management that tokken
// calls (query protocol, XML responses): GetRole, PutRolePolicy,
// GetRolePolicy and DeleteRolePolicy. Roles are test state: register them
// with [IAM.AddRole] and give them a permissions boundary with
// [IAM.SetPermissionsBoundary].
// Like IAM, GetRolePolicy returns the document URL-encoded (RFC 3986), a
// missing role or policy is a 404 NoSuchEntity, and a role whose inline
// policies together exceed [MaxRolePolicySize] is refused with a 409
// LimitExceeded.
type IAM struct {
	f     *Fake
	roles map[string]*iamRole // by role name; guarded by f.mu
}

type iamRole struct {
	arn      string
	id       string            // AROA…, the role's unique id
	boundary string            // permissions boundary policy ARN, "" for none
	policies map[string]string // inline policy name → document as stored
}

func newIAM(f *Fake) *IAM { return &IAM{f: f, roles: map[string]*iamRole{}} }

// IAM returns the IAM handle.
func (f *Fake) IAM() *IAM { return f.iam }

// AddRole registers the role arn (arn:aws:iam::<acct>:role/[path/]<name>)
// so that inline policies can be put on it. Adding a role twice keeps its
// policies. A malformed ARN fails the test.
func (m *IAM) AddRole(arn string) {
	m.f.tb.Helper()
	p := roleARNPattern.FindStringSubmatch(arn)
	if p == nil {
		m.f.tb.Fatalf("awsfake: AddRole: malformed role ARN %q", arn)
		return
	}
	m.f.update(func() {
		if _, ok := m.roles[p[2]]; !ok {
			m.roles[p[2]] = &iamRole{arn: arn, id: "AROA" + strings.ToUpper(randomHex(8)), policies: map[string]string{}}
		}
	})
}

// GrantBoundaryName is the name of tokken's permissions boundary policy
// (infra/target-role.yaml).
const GrantBoundaryName = "tokken-grant-boundary"

// AddGrantableRole adds the role arn as infra/target-role.yaml creates it:
// with tokken's permissions boundary, the policy GrantBoundaryName of the
// role's account.
func (m *IAM) AddGrantableRole(arn string) {
	m.f.tb.Helper()
	m.AddRole(arn)
	if p := roleARNPattern.FindStringSubmatch(arn); p != nil {
		m.SetPermissionsBoundary(p[2], "arn:aws:iam::"+p[1]+":policy/"+GrantBoundaryName)
	}
}

// SetPermissionsBoundary sets (or, with "", removes) the permissions
// boundary of the role named roleName, as PutRolePermissionsBoundary would.
// The role must have been added.
func (m *IAM) SetPermissionsBoundary(roleName, policyARN string) {
	m.f.tb.Helper()
	m.f.update(func() {
		r, ok := m.roles[roleName]
		if !ok {
			m.f.tb.Errorf("awsfake: SetPermissionsBoundary: no role %s", roleName)
			return
		}
		r.boundary = policyARN
	})
}

// RolePolicy returns the inline policy document (plain JSON, as put) of the
// role named roleName, and whether it exists.
func (m *IAM) RolePolicy(roleName, policyName string) (string, bool) {
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	r, ok := m.roles[roleName]
	if !ok {
		return "", false
	}
	doc, ok := r.policies[policyName]
	return doc, ok
}

// SetRolePolicy stores an inline policy without an API call (for seeding a
// test). The role must have been added.
func (m *IAM) SetRolePolicy(roleName, policyName, document string) {
	m.f.tb.Helper()
	m.f.update(func() {
		r, ok := m.roles[roleName]
		if !ok {
			m.f.tb.Errorf("awsfake: SetRolePolicy: no role %s", roleName)
			return
		}
		r.policies[policyName] = document
	})
}

// Denies reports whether the inline policies of the role named roleName deny
// every action to the role session whose aws:userid is userID at the instant
// at. It evaluates Deny statements whose Action is "*" and whose conditions
// use only StringLike/StringEquals on aws:userid and DateLessThan/
// DateGreaterThan on aws:CurrentTime (the shapes revocation policies use); a
// statement using anything else is an error, so a test cannot pass by the
// evaluator ignoring what it does not understand.
func (m *IAM) Denies(roleName, userID string, at time.Time) (bool, error) {
	m.f.mu.Lock()
	var docs []string
	if r, ok := m.roles[roleName]; ok {
		for _, name := range slices.Sorted(maps.Keys(r.policies)) {
			docs = append(docs, r.policies[name])
		}
	}
	m.f.mu.Unlock()
	for _, doc := range docs {
		denied, err := deniesAll(doc, userID, at)
		if err != nil || denied {
			return denied, err
		}
	}
	return false, nil
}

// iamStatement is the part of a policy statement Denies understands.
type iamStatement struct {
	Effect    string
	Action    json.RawMessage
	Condition map[string]map[string]json.RawMessage
}

// stringOrList decodes a policy value that is a string or a list of strings.
func stringOrList(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("want a string or a list of strings, got %s", raw)
	}
	return many, nil
}

func deniesAll(doc, userID string, at time.Time) (bool, error) {
	var pol struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal([]byte(doc), &pol); err != nil {
		return false, fmt.Errorf("awsfake: policy: %w", err)
	}
	var sts []iamStatement
	if err := json.Unmarshal(pol.Statement, &sts); err != nil {
		var one iamStatement
		if err1 := json.Unmarshal(pol.Statement, &one); err1 != nil {
			return false, fmt.Errorf("awsfake: policy Statement: %w", err)
		}
		sts = []iamStatement{one}
	}
	for _, st := range sts {
		if st.Effect != "Deny" {
			continue
		}
		actions, err := stringOrList(st.Action)
		if err != nil {
			return false, fmt.Errorf("awsfake: policy Action: %w", err)
		}
		if !slices.Contains(actions, "*") {
			continue
		}
		ok, err := conditionsHold(st.Condition, userID, at)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func conditionsHold(cond map[string]map[string]json.RawMessage, userID string, at time.Time) (bool, error) {
	for op, kv := range cond {
		for key, raw := range kv {
			vals, err := stringOrList(raw)
			if err != nil {
				return false, fmt.Errorf("awsfake: condition %s %s: %w", op, key, err)
			}
			var hit bool
			switch {
			case key == "aws:userid" && (op == "StringLike" || op == "StringEquals"):
				for _, v := range vals {
					if (op == "StringLike" && wildcardMatch(v, userID)) || (op == "StringEquals" && v == userID) {
						hit = true
					}
				}
			case key == "aws:CurrentTime" && (op == "DateLessThan" || op == "DateGreaterThan"):
				for _, v := range vals {
					t, err := time.Parse(time.RFC3339, v)
					if err != nil {
						return false, fmt.Errorf("awsfake: condition %s %s: %w", op, key, err)
					}
					if (op == "DateLessThan" && at.Before(t)) || (op == "DateGreaterThan" && at.After(t)) {
						hit = true
					}
				}
			default:
				return false, fmt.Errorf("awsfake: Denies does not evaluate condition %s on %s", op, key)
			}
			if !hit {
				return false, nil
			}
		}
	}
	return true, nil
}

// service describes IAM's wire protocol for the fake's router.
func (m *IAM) service() *service {
	return &service{
		proto: protoQuery, xmlns: "https://iam.amazonaws.com/doc/2010-05-08/",
		ops: map[string]handlerFunc{
			"GetRole":          m.getRole,
			"PutRolePolicy":    m.putRolePolicy,
			"GetRolePolicy":    m.getRolePolicy,
			"DeleteRolePolicy": m.deleteRolePolicy,
		},
		faultOf: func(ft Fault) *apiError {
			if ft == Throttle {
				return &apiError{status: 400, code: "Throttling", msg: "Rate exceeded", sender: true}
			}
			return &apiError{status: 500, code: "ServiceFailure", msg: "The request processing has failed because of an unknown error, exception or failure."}
		},
	}
}

var iamNamePattern = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)

func noSuchEntity(format string, args ...any) *apiError {
	return &apiError{status: http.StatusNotFound, code: "NoSuchEntity", msg: fmt.Sprintf(format, args...), sender: true}
}

// roleAndPolicyLocked validates the RoleName and PolicyName parameters and
// finds the role. f.mu must be held.
func (m *IAM) roleAndPolicyLocked(r *request) (*iamRole, string, string, *apiError) {
	role, policy := r.form.Get("RoleName"), r.form.Get("PolicyName")
	if !iamNamePattern.MatchString(role) {
		return nil, "", "", validationError("1 validation error detected: Value '%s' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+", role)
	}
	if !iamNamePattern.MatchString(policy) {
		return nil, "", "", validationError("1 validation error detected: Value '%s' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+", policy)
	}
	rr, ok := m.roles[role]
	if !ok {
		return nil, "", "", noSuchEntity("The role with name %s cannot be found.", role)
	}
	return rr, role, policy, nil
}

// policySize counts a document the way IAM does for its size limits:
// characters, whitespace excluded.
func policySize(doc string) int {
	n := 0
	for _, c := range doc {
		if !unicode.IsSpace(c) {
			n++
		}
	}
	return n
}

type iamEmptyResponse struct {
	XMLName xml.Name
	stsMeta
}

func (m *IAM) putRolePolicy(r *request) (any, *apiError) {
	doc := r.form.Get("PolicyDocument")
	var parsed struct {
		Version   string
		Statement json.RawMessage
	}
	if err := json.Unmarshal([]byte(doc), &parsed); err != nil {
		return nil, clientErr("MalformedPolicyDocument", "Syntax errors in policy.")
	}
	if len(parsed.Statement) == 0 || string(parsed.Statement) == "[]" || string(parsed.Statement) == "null" {
		return nil, clientErr("MalformedPolicyDocument", "Policy statement must contain resources.")
	}
	if parsed.Version != "" && parsed.Version != "2012-10-17" && parsed.Version != "2008-10-17" {
		return nil, clientErr("MalformedPolicyDocument", "The policy failed legacy parsing")
	}
	var aerr *apiError
	m.f.update(func() {
		role, roleName, policyName, err := m.roleAndPolicyLocked(r)
		if err != nil {
			aerr = err
			return
		}
		total := policySize(doc)
		for name, other := range role.policies {
			if name != policyName {
				total += policySize(other)
			}
		}
		if total > MaxRolePolicySize {
			aerr = &apiError{status: http.StatusConflict, code: "LimitExceeded", sender: true,
				msg: fmt.Sprintf("Maximum policy size of %d bytes exceeded for role %s", MaxRolePolicySize, roleName)}
			return
		}
		role.policies[policyName] = doc
	})
	if aerr != nil {
		return nil, aerr
	}
	return &iamEmptyResponse{XMLName: xml.Name{Local: "PutRolePolicyResponse"}}, nil
}

type getRolePolicyResponse struct {
	XMLName xml.Name `xml:"GetRolePolicyResponse"`
	stsMeta
	RoleName       string `xml:"GetRolePolicyResult>RoleName"`
	PolicyName     string `xml:"GetRolePolicyResult>PolicyName"`
	PolicyDocument string `xml:"GetRolePolicyResult>PolicyDocument"`
}

// rfc3986Escape URL-encodes s as IAM encodes policy documents: every byte
// outside the unreserved set is percent-encoded (spaces as %20, not +).
func rfc3986Escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func (m *IAM) getRolePolicy(r *request) (any, *apiError) {
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	role, roleName, policyName, aerr := m.roleAndPolicyLocked(r)
	if aerr != nil {
		return nil, aerr
	}
	doc, ok := role.policies[policyName]
	if !ok {
		return nil, noSuchEntity("The role policy with name %s cannot be found.", policyName)
	}
	return &getRolePolicyResponse{RoleName: roleName, PolicyName: policyName, PolicyDocument: rfc3986Escape(doc)}, nil
}

func (m *IAM) deleteRolePolicy(r *request) (any, *apiError) {
	var aerr *apiError
	m.f.update(func() {
		role, _, policyName, err := m.roleAndPolicyLocked(r)
		if err != nil {
			aerr = err
			return
		}
		if _, ok := role.policies[policyName]; !ok {
			aerr = noSuchEntity("The role policy with name %s cannot be found.", policyName)
			return
		}
		delete(role.policies, policyName)
	})
	if aerr != nil {
		return nil, aerr
	}
	return &iamEmptyResponse{XMLName: xml.Name{Local: "DeleteRolePolicyResponse"}}, nil
}

type getRoleResponse struct {
	XMLName xml.Name `xml:"GetRoleResponse"`
	stsMeta
	Role struct {
		Path                     string `xml:"Path"`
		RoleName                 string `xml:"RoleName"`
		RoleID                   string `xml:"RoleId"`
		Arn                      string `xml:"Arn"`
		CreateDate               string `xml:"CreateDate"`
		AssumeRolePolicyDocument string `xml:"AssumeRolePolicyDocument"`
		MaxSessionDuration       int    `xml:"MaxSessionDuration"`
		PermissionsBoundary      *struct {
			Type string `xml:"PermissionsBoundaryType"`
			Arn  string `xml:"PermissionsBoundaryArn"`
		} `xml:"PermissionsBoundary,omitempty"`
	} `xml:"GetRoleResult>Role"`
}

// getRole answers with the role's identity and permissions boundary. The
// trust policy is a fixed document (the fake does not model trust).
func (m *IAM) getRole(r *request) (any, *apiError) {
	name := r.form.Get("RoleName")
	if !iamNamePattern.MatchString(name) {
		return nil, validationError("1 validation error detected: Value '%s' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+", name)
	}
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	role, ok := m.roles[name]
	if !ok {
		return nil, noSuchEntity("The role with name %s cannot be found.", name)
	}
	out := &getRoleResponse{}
	out.Role.Arn, out.Role.RoleName, out.Role.RoleID = role.arn, name, role.id
	out.Role.Path = "/"
	if i, j := strings.Index(role.arn, ":role/"), strings.LastIndex(role.arn, "/"); j > i+5 {
		out.Role.Path = role.arn[i+5 : j+1]
	}
	out.Role.CreateDate = "2026-01-01T00:00:00Z"
	out.Role.AssumeRolePolicyDocument = rfc3986Escape(`{"Version":"2012-10-17","Statement":[]}`)
	out.Role.MaxSessionDuration = DefaultMaxSessionDuration
	if role.boundary != "" {
		out.Role.PermissionsBoundary = &struct {
			Type string `xml:"PermissionsBoundaryType"`
			Arn  string `xml:"PermissionsBoundaryArn"`
		}{"Policy", role.boundary}
	}
	return out, nil
}
