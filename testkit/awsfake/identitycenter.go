package awsfake

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Credential-scope service names of IAM Identity Center's two APIs; they are
// also the service keys of [Call], [Fake.Fail] and [Fake.SetLatency]. SSO
// Admin signs as "sso" (its SDK id is "SSO Admin").
const (
	SSOAdminService      = "sso"
	IdentityStoreService = "identitystore"
)

// Identity Center operation statuses (AccountAssignmentOperationStatus).
const (
	StatusInProgress = "IN_PROGRESS"
	StatusSucceeded  = "SUCCEEDED"
	StatusFailed     = "FAILED"
)

// IdentityCenter fakes IAM Identity Center: SSO Admin (AWS JSON 1.1, target
// prefix SWBExternalService) with ListInstances, ListPermissionSets,
// DescribePermissionSet, CreateAccountAssignment,
// DescribeAccountAssignmentCreationStatus, DeleteAccountAssignment,
// DescribeAccountAssignmentDeletionStatus and ListAccountAssignments; and
// Identity Store (AWS JSON 1.1, target prefix AWSIdentityStore) with
// GetUserId, GetGroupId, CreateGroupMembership, DeleteGroupMembership,
// GetGroupMembershipId and IsMemberInGroups.
//
// Account assignments are asynchronous as in AWS: Create/Delete return
// IN_PROGRESS with a request id, and the operation's Describe*Status call
// reports IN_PROGRESS the number of times [IdentityCenter.SetPending] says
// (0 by default) before it finishes; the assignment appears or disappears
// only when the operation finishes SUCCEEDED. [IdentityCenter.FailNext]
// makes operations finish FAILED with a reason instead, and
// [IdentityCenter.Settle] finishes every operation still in progress, as
// Identity Center does on its own. A Create or Delete of an assignment that
// has an operation in progress is refused with ConflictException, as AWS
// refuses concurrent writes. Creating an assignment that exists and
// deleting one that does not both finish SUCCEEDED without change.
//
// Users and groups are shared by every instance's identity store; requests
// naming an identity store or instance the test did not add fail with
// ResourceNotFoundException. Group memberships take effect at once, as they
// do in Identity Store. Lists page by [IdentityCenter.SetPageSize] (or the
// request's smaller MaxResults).
type IdentityCenter struct {
	f *Fake
	// guarded by f.mu:
	instances   []IDCInstance
	users       []IDCUser
	groups      []IDCGroup
	permSets    []IDCPermissionSet
	assignments []IDCAssignment
	memberships map[string]idcMembership // by membership id
	ops         map[string]*idcOp        // by request id
	pending     int
	pageSize    int
	failures    map[string][]string // by operation name, queued reasons
}

// IDCInstance is an Identity Center instance and its identity store.
type IDCInstance struct {
	ARN             string // arn:aws:sso:::instance/ssoins-<16 characters>
	IdentityStoreID string // d-<10 characters>
}

// IDCUser is an Identity Store user.
type IDCUser struct {
	ID, UserName string
	Email        string // the primary e-mail (emails.value)
}

// IDCGroup is an Identity Store group.
type IDCGroup struct {
	ID, DisplayName string
}

// IDCPermissionSet is a permission set of an instance.
type IDCPermissionSet struct {
	// ARN is arn:aws:sso:::permissionSet/ssoins-.../ps-...; it names the
	// instance the permission set belongs to.
	ARN, Name, Description string
	// SessionDuration is an ISO-8601 duration (PT1H when empty).
	SessionDuration string
}

// IDCAssignment is an account assignment.
type IDCAssignment struct {
	Account, PermissionSetARN string
	PrincipalType             string // USER or GROUP
	PrincipalID               string
}

type idcMembership struct{ groupID, userID string }

// idcOp is one CreateAccountAssignment or DeleteAccountAssignment request.
type idcOp struct {
	id, op    string // op: "create" or "delete"
	a         IDCAssignment
	status    string
	reason    string // FailureReason once FAILED; the queued reason before
	remaining int    // IN_PROGRESS reports left
	created   time.Time
	fails     bool
}

func newIdentityCenter(f *Fake) *IdentityCenter {
	return &IdentityCenter{f: f, memberships: map[string]idcMembership{}, ops: map[string]*idcOp{},
		pageSize: 100, failures: map[string][]string{}}
}

// IdentityCenter returns the IAM Identity Center handle (identitycenter.go).
func (f *Fake) IdentityCenter() *IdentityCenter { return f.idc }

// AddInstance adds an instance; empty fields are generated. It returns the
// instance as added.
func (ic *IdentityCenter) AddInstance(in IDCInstance) IDCInstance {
	if in.ARN == "" {
		in.ARN = "arn:aws:sso:::instance/ssoins-" + randomHex(8)
	}
	if in.IdentityStoreID == "" {
		in.IdentityStoreID = "d-" + randomHex(5)
	}
	ic.f.update(func() { ic.instances = append(ic.instances, in) })
	return in
}

// AddUser adds a user (ID generated when empty) and returns its id.
func (ic *IdentityCenter) AddUser(u IDCUser) string {
	if u.ID == "" {
		u.ID = newIdentityStoreID()
	}
	ic.f.update(func() { ic.users = append(ic.users, u) })
	return u.ID
}

// AddGroup adds a group (ID generated when empty) and returns its id.
func (ic *IdentityCenter) AddGroup(g IDCGroup) string {
	if g.ID == "" {
		g.ID = newIdentityStoreID()
	}
	ic.f.update(func() { ic.groups = append(ic.groups, g) })
	return g.ID
}

// AddPermissionSet adds a permission set and returns its ARN. An empty ARN
// is generated in the first instance added (which must exist).
func (ic *IdentityCenter) AddPermissionSet(ps IDCPermissionSet) string {
	ic.f.update(func() {
		if ps.ARN == "" {
			if len(ic.instances) == 0 {
				ic.f.tb.Fatalf("awsfake: AddPermissionSet %s before AddInstance", ps.Name)
			}
			ps.ARN = "arn:aws:sso:::permissionSet/" + lastPart(ic.instances[0].ARN) + "/ps-" + randomHex(8)
		}
		if ps.SessionDuration == "" {
			ps.SessionDuration = "PT1H"
		}
		ic.permSets = append(ic.permSets, ps)
	})
	return ps.ARN
}

// PutAssignment adds an assignment as if it had been made outside tokken.
func (ic *IdentityCenter) PutAssignment(a IDCAssignment) {
	ic.f.update(func() {
		if !slices.Contains(ic.assignments, a) {
			ic.assignments = append(ic.assignments, a)
		}
	})
}

// HasAssignment reports whether the assignment exists now.
func (ic *IdentityCenter) HasAssignment(a IDCAssignment) bool {
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	return slices.Contains(ic.assignments, a)
}

// Assignments returns every assignment, in creation order.
func (ic *IdentityCenter) Assignments() []IDCAssignment {
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	return slices.Clone(ic.assignments)
}

// IsMember reports whether userID is a member of groupID now.
func (ic *IdentityCenter) IsMember(groupID, userID string) bool {
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	return ic.membershipLocked(groupID, userID) != ""
}

// SetPending makes every later assignment operation report IN_PROGRESS n
// times from its Describe*Status call before it finishes.
func (ic *IdentityCenter) SetPending(n int) {
	ic.f.update(func() { ic.pending = n })
}

// SetPageSize bounds the page size of the List operations (100 by default).
func (ic *IdentityCenter) SetPageSize(n int) {
	ic.f.update(func() { ic.pageSize = n })
}

// FailNext makes the next n operations started by op
// ("CreateAccountAssignment" or "DeleteAccountAssignment") finish FAILED
// with reason as their FailureReason. Like [Fake.Fail], failures queue up.
func (ic *IdentityCenter) FailNext(op string, n int, reason string) {
	ic.f.update(func() {
		for range n {
			ic.failures[op] = append(ic.failures[op], reason)
		}
	})
}

// Settle finishes every operation still in progress, as Identity Center
// eventually does whether or not anyone asks for the status.
func (ic *IdentityCenter) Settle() {
	ic.f.update(func() {
		for _, o := range ic.ops {
			if o.status == StatusInProgress {
				ic.finishLocked(o)
			}
		}
	})
}

// newIdentityStoreID returns an id shaped like Identity Store's user and
// group ids (a 10-digit hex prefix and a UUID).
func newIdentityStoreID() string { return randomHex(5) + "-" + requestID() }

func (ic *IdentityCenter) ssoAdminService() *service {
	return &service{
		proto: protoJSON11, target: "SWBExternalService",
		ops: map[string]handlerFunc{
			"ListInstances":                           ic.listInstances,
			"ListPermissionSets":                      ic.listPermissionSets,
			"DescribePermissionSet":                   ic.describePermissionSet,
			"CreateAccountAssignment":                 ic.createAccountAssignment,
			"DescribeAccountAssignmentCreationStatus": ic.describeCreationStatus,
			"DeleteAccountAssignment":                 ic.deleteAccountAssignment,
			"DescribeAccountAssignmentDeletionStatus": ic.describeDeletionStatus,
			"ListAccountAssignments":                  ic.listAccountAssignments,
		},
		faultOf: idcFault,
	}
}

func (ic *IdentityCenter) identityStoreService() *service {
	return &service{
		proto: protoJSON11, target: "AWSIdentityStore",
		ops: map[string]handlerFunc{
			"GetUserId":             ic.getUserID,
			"GetGroupId":            ic.getGroupID,
			"CreateGroupMembership": ic.createGroupMembership,
			"DeleteGroupMembership": ic.deleteGroupMembership,
			"GetGroupMembershipId":  ic.getGroupMembershipID,
			"IsMemberInGroups":      ic.isMemberInGroups,
		},
		faultOf: idcFault,
	}
}

// idcFault is both APIs' throttling and internal errors.
func idcFault(ft Fault) *apiError {
	if ft == Throttle {
		return idcErr(400, "ThrottlingException", nil, "Rate exceeded")
	}
	return idcErr(500, "InternalServerException", nil, "An internal error occurred.")
}

// idcErr is an Identity Center error: both APIs send "Message" and, for
// Identity Store, members such as ResourceType and Reason.
func idcErr(status int, code string, fields map[string]string, format string, args ...any) *apiError {
	msg := fmt.Sprintf(format, args...)
	f := map[string]string{"Message": msg}
	for k, v := range fields {
		f[k] = v
	}
	return &apiError{status: status, code: code, msg: msg, sender: status < 500, fields: f}
}

func idcValidation(format string, args ...any) *apiError {
	return idcErr(400, "ValidationException", nil, format, args...)
}

// storeNotFound is Identity Store's ResourceNotFoundException for a resource
// type (USER, GROUP, GROUP_MEMBERSHIP, IDENTITY_STORE).
func storeNotFound(resourceType, id, format string, args ...any) *apiError {
	f := map[string]string{"ResourceType": resourceType}
	if id != "" {
		f["ResourceId"] = id
	}
	return idcErr(400, "ResourceNotFoundException", f, format, args...)
}

// page slices items by the NextToken (an offset) and MaxResults of a list
// request, returning the next token ("" on the last page).
func page[T any](ic *IdentityCenter, items []T, maxResults int, token string) ([]T, string, *apiError) {
	start := 0
	if token != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(token, "fake-token-"))
		if err != nil || n < 0 || n > len(items) || !strings.HasPrefix(token, "fake-token-") {
			return nil, "", idcValidation("The NextToken is not valid.")
		}
		start = n
	}
	size := ic.pageSize
	if maxResults < 0 || maxResults > 100 {
		return nil, "", idcValidation("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100", maxResults)
	}
	if maxResults > 0 && maxResults < size {
		size = maxResults
	}
	end := min(start+size, len(items))
	next := ""
	if end < len(items) {
		next = "fake-token-" + strconv.Itoa(end)
	}
	return items[start:end], next, nil
}

// instanceLocked checks that arn is an instance of the fake. f.mu must be
// held.
func (ic *IdentityCenter) instanceLocked(arn string) *apiError {
	if arn == "" {
		return idcValidation("1 validation error detected: Value null at 'instanceArn' failed to satisfy constraint: Member must not be null")
	}
	for _, in := range ic.instances {
		if in.ARN == arn {
			return nil
		}
	}
	return idcErr(400, "ResourceNotFoundException", nil, "Could not find Instance with ARN %s", arn)
}

// permissionSetLocked finds the permission set arn of instance. f.mu must
// be held.
func (ic *IdentityCenter) permissionSetLocked(instance, arn string) (*IDCPermissionSet, *apiError) {
	if aerr := ic.instanceLocked(instance); aerr != nil {
		return nil, aerr
	}
	if !strings.HasPrefix(arn, "arn:aws:sso:::permissionSet/") {
		return nil, idcValidation("The permission set ARN %q is not valid.", arn)
	}
	for i := range ic.permSets {
		ps := &ic.permSets[i]
		if ps.ARN == arn && strings.Contains(arn, "/"+lastPart(instance)+"/") {
			return ps, nil
		}
	}
	return nil, idcErr(400, "ResourceNotFoundException", nil, "Could not find PermissionSet with ARN %s", arn)
}

func (ic *IdentityCenter) listInstances(r *request) (any, *apiError) {
	var in struct {
		MaxResults int
		NextToken  string
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	items, next, aerr := page(ic, ic.instances, in.MaxResults, in.NextToken)
	if aerr != nil {
		return nil, aerr
	}
	out := []map[string]any{}
	for _, i := range items {
		out = append(out, map[string]any{"InstanceArn": i.ARN, "IdentityStoreId": i.IdentityStoreID,
			"OwnerAccountId": AccountID, "Status": "ACTIVE"})
	}
	return withNext(map[string]any{"Instances": out}, next), nil
}

func withNext(m map[string]any, next string) map[string]any {
	if next != "" {
		m["NextToken"] = next
	}
	return m
}

func (ic *IdentityCenter) listPermissionSets(r *request) (any, *apiError) {
	var in struct {
		InstanceArn string
		MaxResults  int
		NextToken   string
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	if aerr := ic.instanceLocked(in.InstanceArn); aerr != nil {
		return nil, aerr
	}
	var arns []string
	for _, ps := range ic.permSets {
		if strings.Contains(ps.ARN, "/"+lastPart(in.InstanceArn)+"/") {
			arns = append(arns, ps.ARN)
		}
	}
	items, next, aerr := page(ic, arns, in.MaxResults, in.NextToken)
	if aerr != nil {
		return nil, aerr
	}
	return withNext(map[string]any{"PermissionSets": append([]string{}, items...)}, next), nil
}

func (ic *IdentityCenter) describePermissionSet(r *request) (any, *apiError) {
	var in struct{ InstanceArn, PermissionSetArn string }
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	ps, aerr := ic.permissionSetLocked(in.InstanceArn, in.PermissionSetArn)
	if aerr != nil {
		return nil, aerr
	}
	out := map[string]any{"Name": ps.Name, "PermissionSetArn": ps.ARN, "SessionDuration": ps.SessionDuration}
	if ps.Description != "" {
		out["Description"] = ps.Description
	}
	return map[string]any{"PermissionSet": out}, nil
}

// idcAssignmentInput is the request of Create/DeleteAccountAssignment.
type idcAssignmentInput struct {
	InstanceArn, TargetId, TargetType, PermissionSetArn, PrincipalType, PrincipalId string
}

// startLocked validates and starts a create or delete operation. f.mu must
// be held.
func (ic *IdentityCenter) startLocked(r *request, op string) (any, *apiError) {
	var in idcAssignmentInput
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	if _, aerr := ic.permissionSetLocked(in.InstanceArn, in.PermissionSetArn); aerr != nil {
		return nil, aerr
	}
	if in.TargetType != "AWS_ACCOUNT" {
		return nil, idcValidation("1 validation error detected: Value '%s' at 'targetType' failed to satisfy constraint: Member must satisfy enum value set: [AWS_ACCOUNT]", in.TargetType)
	}
	if len(in.TargetId) != 12 || strings.Trim(in.TargetId, "0123456789") != "" {
		return nil, idcValidation("1 validation error detected: Value '%s' at 'targetId' failed to satisfy constraint: Member must satisfy regular expression pattern: \\d{12}", in.TargetId)
	}
	switch in.PrincipalType {
	case "USER":
		if !slices.ContainsFunc(ic.users, func(u IDCUser) bool { return u.ID == in.PrincipalId }) {
			return nil, idcErr(400, "ResourceNotFoundException", nil, "Could not find principal with id %s", in.PrincipalId)
		}
	case "GROUP":
		if !slices.ContainsFunc(ic.groups, func(g IDCGroup) bool { return g.ID == in.PrincipalId }) {
			return nil, idcErr(400, "ResourceNotFoundException", nil, "Could not find principal with id %s", in.PrincipalId)
		}
	default:
		return nil, idcValidation("1 validation error detected: Value '%s' at 'principalType' failed to satisfy constraint: Member must satisfy enum value set: [USER, GROUP]", in.PrincipalType)
	}
	a := IDCAssignment{Account: in.TargetId, PermissionSetARN: in.PermissionSetArn, PrincipalType: in.PrincipalType, PrincipalID: in.PrincipalId}
	for _, o := range ic.ops {
		if o.a == a && o.status == StatusInProgress {
			return nil, idcErr(400, "ConflictException", nil, "An account assignment operation for this principal, permission set and account is already in progress. Retry the request later.")
		}
	}
	o := &idcOp{id: requestID(), op: op, a: a, status: StatusInProgress, remaining: ic.pending, created: r.now}
	key := map[string]string{"create": "CreateAccountAssignment", "delete": "DeleteAccountAssignment"}[op]
	if q := ic.failures[key]; len(q) > 0 {
		o.reason, o.fails = q[0], true
		ic.failures[key] = q[1:]
	}
	ic.ops[o.id] = o
	if o.remaining == 0 {
		resp := ic.statusLocked(o) // the response says IN_PROGRESS, as AWS's does
		ic.finishLocked(o)
		return resp, nil
	}
	return ic.statusLocked(o), nil
}

// finishLocked ends o, applying its effect when it succeeds. f.mu must be
// held.
func (ic *IdentityCenter) finishLocked(o *idcOp) {
	if o.fails {
		o.status = StatusFailed
		return
	}
	o.status, o.reason = StatusSucceeded, ""
	i := slices.Index(ic.assignments, o.a)
	switch {
	case o.op == "create" && i < 0:
		ic.assignments = append(ic.assignments, o.a)
	case o.op == "delete" && i >= 0:
		ic.assignments = slices.Delete(ic.assignments, i, i+1)
	}
}

// statusLocked is o as an AccountAssignmentOperationStatus.
func (ic *IdentityCenter) statusLocked(o *idcOp) map[string]any {
	st := map[string]any{
		"Status": o.status, "RequestId": o.id, "TargetId": o.a.Account, "TargetType": "AWS_ACCOUNT",
		"PermissionSetArn": o.a.PermissionSetARN, "PrincipalType": o.a.PrincipalType, "PrincipalId": o.a.PrincipalID,
		"CreatedDate": epoch(o.created),
	}
	if o.status == StatusFailed {
		st["FailureReason"] = o.reason
	}
	name := "AccountAssignmentCreationStatus"
	if o.op == "delete" {
		name = "AccountAssignmentDeletionStatus"
	}
	return map[string]any{name: st}
}

func (ic *IdentityCenter) createAccountAssignment(r *request) (any, *apiError) {
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	return ic.startLocked(r, "create")
}

func (ic *IdentityCenter) deleteAccountAssignment(r *request) (any, *apiError) {
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	return ic.startLocked(r, "delete")
}

// describeStatus reports (and advances) the operation named by the request
// member idField.
func (ic *IdentityCenter) describeStatus(r *request, op, idField string) (any, *apiError) {
	var in map[string]any
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	instance, _ := in["InstanceArn"].(string)
	id, _ := in[idField].(string)
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	if aerr := ic.instanceLocked(instance); aerr != nil {
		return nil, aerr
	}
	o := ic.ops[id]
	if o == nil || o.op != op {
		return nil, idcErr(400, "ResourceNotFoundException", nil, "Could not find the request with id %s", id)
	}
	if o.status == StatusInProgress {
		if o.remaining > 0 {
			o.remaining--
		} else {
			ic.finishLocked(o)
		}
	}
	return ic.statusLocked(o), nil
}

func (ic *IdentityCenter) describeCreationStatus(r *request) (any, *apiError) {
	return ic.describeStatus(r, "create", "AccountAssignmentCreationRequestId")
}

func (ic *IdentityCenter) describeDeletionStatus(r *request) (any, *apiError) {
	return ic.describeStatus(r, "delete", "AccountAssignmentDeletionRequestId")
}

func (ic *IdentityCenter) listAccountAssignments(r *request) (any, *apiError) {
	var in struct {
		InstanceArn, AccountId, PermissionSetArn string
		MaxResults                               int
		NextToken                                string
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	if _, aerr := ic.permissionSetLocked(in.InstanceArn, in.PermissionSetArn); aerr != nil {
		return nil, aerr
	}
	if in.AccountId == "" {
		return nil, idcValidation("1 validation error detected: Value null at 'accountId' failed to satisfy constraint: Member must not be null")
	}
	var match []map[string]any
	for _, a := range ic.assignments {
		if a.Account == in.AccountId && a.PermissionSetARN == in.PermissionSetArn {
			match = append(match, map[string]any{"AccountId": a.Account, "PermissionSetArn": a.PermissionSetARN,
				"PrincipalType": a.PrincipalType, "PrincipalId": a.PrincipalID})
		}
	}
	items, next, aerr := page(ic, match, in.MaxResults, in.NextToken)
	if aerr != nil {
		return nil, aerr
	}
	return withNext(map[string]any{"AccountAssignments": append([]map[string]any{}, items...)}, next), nil
}

// storeLocked checks the IdentityStoreId of a request. f.mu must be held.
func (ic *IdentityCenter) storeLocked(id string) *apiError {
	if id == "" {
		return idcValidation("1 validation error detected: Value null at 'identityStoreId' failed to satisfy constraint: Member must not be null")
	}
	for _, in := range ic.instances {
		if in.IdentityStoreID == id {
			return nil
		}
	}
	return storeNotFound("IDENTITY_STORE", id, "IdentityStore not present for IdentityStoreId: %s", id)
}

// idcAlternateIdentifier is Identity Store's AlternateIdentifier union.
type idcAlternateIdentifier struct {
	UniqueAttribute *struct {
		AttributePath  string
		AttributeValue json.RawMessage
	}
	ExternalID *struct{ Issuer, ID string } `json:"ExternalId"`
}

// uniqueAttribute returns the path and string value of a UniqueAttribute
// identifier.
func (a *idcAlternateIdentifier) uniqueAttribute() (path, value string, aerr *apiError) {
	if a == nil || a.UniqueAttribute == nil {
		if a != nil && a.ExternalID != nil {
			return "", "", idcValidation("awsfake: ExternalId identifiers are not faked")
		}
		return "", "", idcValidation("1 validation error detected: Value null at 'alternateIdentifier' failed to satisfy constraint: Member must not be null")
	}
	if err := json.Unmarshal(a.UniqueAttribute.AttributeValue, &value); err != nil {
		return "", "", idcValidation("AttributeValue must be a string.")
	}
	return a.UniqueAttribute.AttributePath, value, nil
}

func (ic *IdentityCenter) getUserID(r *request) (any, *apiError) {
	var in struct {
		IdentityStoreID     string `json:"IdentityStoreId"`
		AlternateIdentifier *idcAlternateIdentifier
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	path, value, aerr := in.AlternateIdentifier.uniqueAttribute()
	if aerr != nil {
		return nil, aerr
	}
	var match func(IDCUser) bool
	switch strings.ToLower(path) {
	case "username":
		match = func(u IDCUser) bool { return strings.EqualFold(u.UserName, value) }
	case "emails.value":
		match = func(u IDCUser) bool { return u.Email != "" && strings.EqualFold(u.Email, value) }
	default:
		return nil, idcValidation("Invalid attribute path %s for the User resource.", path)
	}
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	if aerr := ic.storeLocked(in.IdentityStoreID); aerr != nil {
		return nil, aerr
	}
	for _, u := range ic.users {
		if match(u) {
			return map[string]any{"UserId": u.ID, "IdentityStoreId": in.IdentityStoreID}, nil
		}
	}
	return nil, storeNotFound("USER", "", "USER not found.")
}

func (ic *IdentityCenter) getGroupID(r *request) (any, *apiError) {
	var in struct {
		IdentityStoreID     string `json:"IdentityStoreId"`
		AlternateIdentifier *idcAlternateIdentifier
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	path, value, aerr := in.AlternateIdentifier.uniqueAttribute()
	if aerr != nil {
		return nil, aerr
	}
	if !strings.EqualFold(path, "displayName") {
		return nil, idcValidation("Invalid attribute path %s for the Group resource.", path)
	}
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	if aerr := ic.storeLocked(in.IdentityStoreID); aerr != nil {
		return nil, aerr
	}
	for _, g := range ic.groups {
		if strings.EqualFold(g.DisplayName, value) {
			return map[string]any{"GroupId": g.ID, "IdentityStoreId": in.IdentityStoreID}, nil
		}
	}
	return nil, storeNotFound("GROUP", "", "GROUP not found.")
}

// membershipLocked returns the id of userID's membership of groupID, "" for
// none. f.mu must be held.
func (ic *IdentityCenter) membershipLocked(groupID, userID string) string {
	for id, m := range ic.memberships {
		if m.groupID == groupID && m.userID == userID {
			return id
		}
	}
	return ""
}

// idcMemberInput is the GroupId and MemberId union of the membership calls.
type idcMemberInput struct {
	IdentityStoreID string `json:"IdentityStoreId"`
	GroupID         string `json:"GroupId"`
	MemberID        struct {
		UserID string `json:"UserId"`
	} `json:"MemberId"`
}

// memberLocked checks the store, group and user of a membership request.
// f.mu must be held.
func (ic *IdentityCenter) memberLocked(in idcMemberInput) *apiError {
	if aerr := ic.storeLocked(in.IdentityStoreID); aerr != nil {
		return aerr
	}
	if !slices.ContainsFunc(ic.groups, func(g IDCGroup) bool { return g.ID == in.GroupID }) {
		return storeNotFound("GROUP", in.GroupID, "GROUP not found.")
	}
	if !slices.ContainsFunc(ic.users, func(u IDCUser) bool { return u.ID == in.MemberID.UserID }) {
		return storeNotFound("USER", in.MemberID.UserID, "USER not found.")
	}
	return nil
}

func (ic *IdentityCenter) createGroupMembership(r *request) (any, *apiError) {
	var in idcMemberInput
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	if aerr := ic.memberLocked(in); aerr != nil {
		return nil, aerr
	}
	if ic.membershipLocked(in.GroupID, in.MemberID.UserID) != "" {
		return nil, idcErr(400, "ConflictException", map[string]string{"Reason": "UNIQUENESS_CONSTRAINT_VIOLATION"},
			"Member and Group relationship already exists.")
	}
	id := newIdentityStoreID()
	ic.memberships[id] = idcMembership{in.GroupID, in.MemberID.UserID}
	return map[string]any{"MembershipId": id, "IdentityStoreId": in.IdentityStoreID}, nil
}

func (ic *IdentityCenter) deleteGroupMembership(r *request) (any, *apiError) {
	var in struct {
		IdentityStoreID string `json:"IdentityStoreId"`
		MembershipID    string `json:"MembershipId"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	if aerr := ic.storeLocked(in.IdentityStoreID); aerr != nil {
		return nil, aerr
	}
	if _, ok := ic.memberships[in.MembershipID]; !ok {
		return nil, storeNotFound("GROUP_MEMBERSHIP", in.MembershipID, "GROUP_MEMBERSHIP not found.")
	}
	delete(ic.memberships, in.MembershipID)
	return map[string]any{}, nil
}

func (ic *IdentityCenter) getGroupMembershipID(r *request) (any, *apiError) {
	var in idcMemberInput
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	if aerr := ic.memberLocked(in); aerr != nil {
		return nil, aerr
	}
	id := ic.membershipLocked(in.GroupID, in.MemberID.UserID)
	if id == "" {
		return nil, storeNotFound("GROUP_MEMBERSHIP", "", "GROUP_MEMBERSHIP not found.")
	}
	return map[string]any{"MembershipId": id, "IdentityStoreId": in.IdentityStoreID}, nil
}

func (ic *IdentityCenter) isMemberInGroups(r *request) (any, *apiError) {
	var in struct {
		IdentityStoreID string `json:"IdentityStoreId"`
		MemberID        struct {
			UserID string `json:"UserId"`
		} `json:"MemberId"`
		GroupIDs []string `json:"GroupIds"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	if len(in.GroupIDs) == 0 || len(in.GroupIDs) > 100 {
		return nil, idcValidation("1 validation error detected: Value at 'groupIds' failed to satisfy constraint: Member must have length between 1 and 100")
	}
	ic.f.mu.Lock()
	defer ic.f.mu.Unlock()
	if aerr := ic.storeLocked(in.IdentityStoreID); aerr != nil {
		return nil, aerr
	}
	results := []map[string]any{}
	for _, g := range in.GroupIDs {
		results = append(results, map[string]any{"GroupId": g, "MemberId": map[string]string{"UserId": in.MemberID.UserID},
			"MembershipExists": ic.membershipLocked(g, in.MemberID.UserID) != ""})
	}
	return map[string]any{"Results": results}, nil
}
