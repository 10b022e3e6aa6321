package awsfake

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SSM fakes Session Manager's session APIs (AWS JSON 1.1).
type SSM struct {
	f        *Fake
	sessions []*Session // guarded by f.mu
}

// Session is a fake Session Manager session.
type Session struct {
	ID           string
	Target       string // instance id
	Owner        string // ARN of the identity that started it
	Status       string // Connected, Terminated, ...
	DocumentName string
	Reason       string
	Start        time.Time
	End          time.Time // zero while active
}

// active reports whether DescribeSessions lists s under State=Active.
func (s *Session) active() bool {
	switch s.Status {
	case "Connected", "Connecting", "Disconnected", "Terminating":
		return true
	}
	return false
}

// OpenSession opens a session on target owned by ownerARN without an API
// call, e.g. one a human started from the console before revocation. It
// returns the session id.
func (m *SSM) OpenSession(target, ownerARN string) string {
	name := ownerARN[strings.LastIndex(ownerARN, "/")+1:]
	var id string
	m.f.update(func() {
		id = name + "-" + randomHex(9)[:17]
		m.sessions = append(m.sessions, &Session{ID: id, Target: target, Owner: ownerARN, Status: "Connected", Start: m.f.now()})
	})
	return id
}

// Sessions returns copies of every session, oldest first.
func (m *SSM) Sessions() []Session {
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	out := make([]Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, *s)
	}
	return out
}

// ActiveSessions returns copies of the sessions DescribeSessions would list
// as Active.
func (m *SSM) ActiveSessions() []Session {
	var out []Session
	for _, s := range m.Sessions() {
		if s.active() {
			out = append(out, s)
		}
	}
	return out
}

type ssmStartSessionInput struct {
	Target       string
	DocumentName string
	Reason       string
}

func (m *SSM) startSession(r *request) (any, *apiError) {
	var in ssmStartSessionInput
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	if in.Target == "" {
		return nil, clientErr("ValidationException", "1 validation error detected: Value null at 'target' failed to satisfy constraint: Member must not be null")
	}
	inst, ok := m.f.ec2.Instance(in.Target)
	if !ok || inst.State != "running" {
		return nil, clientErr("TargetNotConnected", "%s is not connected.", in.Target)
	}
	var id string
	m.f.update(func() {
		id = r.caller.sessionName + "-" + randomHex(9)[:17]
		m.sessions = append(m.sessions, &Session{
			ID: id, Target: in.Target, Owner: r.caller.arn, Status: "Connected",
			DocumentName: in.DocumentName, Reason: in.Reason, Start: r.now,
		})
	})
	return map[string]string{
		"SessionId":  id,
		"TokenValue": "fake-token-" + randomHex(16),
		"StreamUrl":  "wss://ssmmessages." + Region + ".amazonaws.com/v1/data-channel/" + id + "?role=publish_subscribe",
	}, nil
}

type ssmDescribeSessionsInput struct {
	State      string
	MaxResults int
	NextToken  string
	Filters    []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
}

type ssmSession struct {
	SessionID    string   `json:"SessionId"`
	Target       string   `json:"Target"`
	Status       string   `json:"Status"`
	StartDate    float64  `json:"StartDate"`
	EndDate      *float64 `json:"EndDate,omitempty"`
	DocumentName string   `json:"DocumentName,omitempty"`
	Owner        string   `json:"Owner"`
	Reason       string   `json:"Reason,omitempty"`
}

func (m *SSM) describeSessions(r *request) (any, *apiError) {
	var in ssmDescribeSessionsInput
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	if in.State != "Active" && in.State != "History" {
		return nil, clientErr("ValidationException", "1 validation error detected: Value '%s' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [Active, History]", in.State)
	}
	if in.MaxResults == 0 {
		in.MaxResults = 20
	}
	if in.MaxResults < 1 || in.MaxResults > 200 {
		return nil, clientErr("ValidationException", "1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 200", in.MaxResults)
	}
	start := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(in.NextToken)
		if err != nil || n < 0 {
			return nil, clientErr("InvalidNextToken", "The specified token isn't valid.")
		}
		start = n
	}
	type match func(*Session) bool
	var preds []match
	for _, flt := range in.Filters {
		v := flt.Value
		switch flt.Key {
		case "Target":
			preds = append(preds, func(s *Session) bool { return s.Target == v })
		case "Owner":
			preds = append(preds, func(s *Session) bool { return s.Owner == v })
		case "Status":
			preds = append(preds, func(s *Session) bool { return s.Status == v })
		case "SessionId":
			preds = append(preds, func(s *Session) bool { return s.ID == v })
		case "InvokedAfter", "InvokedBefore":
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return nil, clientErr("InvalidFilterKey", "Filter %s needs a date such as 2018-08-29T00:00:00Z, got %q", flt.Key, v)
			}
			if flt.Key == "InvokedAfter" {
				preds = append(preds, func(s *Session) bool { return !s.Start.Before(t) })
			} else {
				preds = append(preds, func(s *Session) bool { return s.Start.Before(t) })
			}
		default:
			return nil, clientErr("InvalidFilterKey", "The specified key %q isn't valid.", flt.Key)
		}
	}

	m.f.mu.Lock()
	var matched []ssmSession
	for _, s := range slices.Backward(m.sessions) { // newest first, like SSM
		if s.active() != (in.State == "Active") {
			continue
		}
		ok := true
		for _, p := range preds {
			if !p(s) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		out := ssmSession{SessionID: s.ID, Target: s.Target, Status: s.Status, StartDate: epoch(s.Start),
			DocumentName: s.DocumentName, Owner: s.Owner, Reason: s.Reason}
		if !s.End.IsZero() {
			e := epoch(s.End)
			out.EndDate = &e
		}
		matched = append(matched, out)
	}
	m.f.mu.Unlock()

	resp := struct {
		Sessions  []ssmSession `json:"Sessions"`
		NextToken string       `json:"NextToken,omitempty"`
	}{Sessions: []ssmSession{}}
	if start < len(matched) {
		end := min(start+in.MaxResults, len(matched))
		resp.Sessions = matched[start:end]
		if end < len(matched) {
			resp.NextToken = strconv.Itoa(end)
		}
	}
	return resp, nil
}

// sessionIDInput decodes the SessionId of TerminateSession and ResumeSession
// and authorizes the caller: a caller with a session policy (a grant's
// credentials) must be allowed action on the session's ARN by it. The fake
// models no role policies, so other callers are allowed.
func (m *SSM) sessionIDInput(r *request, action string) (string, *apiError) {
	var in struct {
		SessionID string `json:"SessionId"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return "", aerr
	}
	if in.SessionID == "" {
		return "", clientErr("ValidationException", "1 validation error detected: Value null at 'sessionId' failed to satisfy constraint: Member must not be null")
	}
	if r.caller.sessionPolicy == "" {
		return in.SessionID, nil
	}
	arn := fmt.Sprintf("arn:aws:ssm:%s:%s:session/%s", Region, r.caller.account, in.SessionID)
	d, err := EvaluatePolicy(r.caller.sessionPolicy, PolicyRequest{Action: action, Resource: arn, Context: map[string]string{
		"aws:userid": r.caller.userID, "aws:PrincipalArn": r.caller.arn, "aws:CurrentTime": r.now.UTC().Format(time.RFC3339),
	}})
	if err != nil {
		return "", &apiError{status: 500, code: "InternalServerError", msg: err.Error()}
	}
	if d != Allowed {
		return "", clientErr("AccessDeniedException", "User: %s is not authorized to perform: %s on resource: %s because the session policy %s it", r.caller.arn, action, arn,
			map[Decision]string{ImplicitDeny: "does not allow", ExplicitDeny: "denies"}[d])
	}
	return in.SessionID, nil
}

func (m *SSM) terminateSession(r *request) (any, *apiError) {
	id, aerr := m.sessionIDInput(r, "ssm:TerminateSession")
	if aerr != nil {
		return nil, aerr
	}
	// Like SSM, unknown ids succeed: callers must confirm with
	// DescribeSessions.
	m.f.update(func() {
		for _, s := range m.sessions {
			if s.ID == id && s.active() {
				s.Status = "Terminated"
				s.End = r.now
			}
		}
	})
	return map[string]string{"SessionId": id}, nil
}

// resumeSession reconnects to a session that is still active; like SSM,
// an ended or unknown session is an error.
func (m *SSM) resumeSession(r *request) (any, *apiError) {
	id, aerr := m.sessionIDInput(r, "ssm:ResumeSession")
	if aerr != nil {
		return nil, aerr
	}
	var ok bool
	m.f.update(func() {
		for _, s := range m.sessions {
			if s.ID == id && s.active() {
				s.Status = "Connected"
				ok = true
			}
		}
	})
	if !ok {
		return nil, clientErr("DoesNotExistException", "Session %s does not exist or has ended.", id)
	}
	return map[string]string{
		"SessionId":  id,
		"TokenValue": "fake-token-" + randomHex(16),
		"StreamUrl":  "wss://ssmmessages." + Region + ".amazonaws.com/v1/data-channel/" + id + "?role=publish_subscribe",
	}, nil
}
