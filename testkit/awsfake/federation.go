package awsfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// FederationService is the service key of [Call], [Fake.Fail] and
// [Fake.SetLatency] for the console federation endpoint; its operations are
// "getSigninToken" and "login".
const FederationService = "federation"

// SigninTokenLifetime is how long a sign-in token from getSigninToken can be
// used to log in (15 minutes, like AWS).
const SigninTokenLifetime = 15 * time.Minute

// Federation fakes the AWS console federation endpoint
// (https://signin.aws.amazon.com/federation), served at [Fake.FederationURL]
// on the fake's server. It is plain HTTPS GET, not an AWS API:
//
//   - Action=getSigninToken&SessionDuration=N&Session=<JSON {sessionId,
//     sessionKey, sessionToken}> answers {"SigninToken": "..."} only when the
//     Session carries credentials the fake STS issued (all three values
//     exactly) that have not expired by the fake's clock. SessionDuration is
//     optional; when present it must be 900..43200, and at most 3600 for
//     credentials obtained by role chaining.
//   - Action=login&Issuer=...&Destination=<URL>&SigninToken=... redirects
//     (302) to Destination when the token is known and less than
//     [SigninTokenLifetime] old, and records a [Login].
//
// Refusals are HTTP 400 with a plain-text reason. [Fake.Fail] injects
// Throttle (HTTP 429) and Internal (HTTP 500) faults. Calls are recorded
// under [FederationService] with only SessionDuration and the access key id
// as parameters (the recorded call never holds the secret or the token).
type Federation struct {
	f      *Fake
	tokens map[string]signinToken // guarded by f.mu
	logins []Login                // guarded by f.mu
}

type signinToken struct {
	issued          AssumedRole
	sessionDuration int
	at              time.Time
}

// Login is one successful console login through the fake federation
// endpoint.
type Login struct {
	// AccessKeyID identifies the STS credentials the sign-in token was
	// made from; AssumedRoleARN is their identity.
	AccessKeyID    string
	AssumedRoleARN string
	// SessionDuration is the console session length asked for in
	// getSigninToken, 0 when omitted.
	SessionDuration int
	Issuer          string
	Destination     string
	At              time.Time
}

func newFederation(f *Fake) *Federation {
	return &Federation{f: f, tokens: map[string]signinToken{}}
}

// Federation returns the console federation endpoint's handle.
func (f *Fake) Federation() *Federation { return f.fed }

// FederationURL is the fake federation endpoint, to use where tokken reads
// TOKKEN_FEDERATION_URL.
func (f *Fake) FederationURL() string { return f.srv.URL + "/federation" }

// Logins returns every successful login, oldest first.
func (d *Federation) Logins() []Login {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	out := make([]Login, len(d.logins))
	copy(out, d.logins)
	return out
}

// Issued returns the AssumeRole call that issued exactly these credentials
// (access key id, secret and session token all matching), so a test can
// assert that what tokken delivered are real credentials from the fake STS
// rather than made-up strings.
func (s *STS) Issued(accessKeyID, secretAccessKey, sessionToken string) (AssumedRole, bool) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for _, a := range s.assumed {
		if a.AccessKeyID == accessKeyID && a.SecretAccessKey == secretAccessKey && a.SessionToken == sessionToken {
			return a, true
		}
	}
	return AssumedRole{}, false
}

// withFederation serves the federation endpoint's path and passes every
// other request to next (the AWS API router).
func (f *Fake) withFederation(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/federation" {
			f.fed.serveHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fedError is a refusal: an HTTP status, a code for the call log and a
// plain-text reason.
type fedError struct {
	status int
	code   string
	msg    string
}

func (d *Federation) serveHTTP(w http.ResponseWriter, hr *http.Request) {
	if err := hr.ParseForm(); err != nil {
		http.Error(w, "awsfake federation: bad query: "+err.Error(), http.StatusBadRequest)
		return
	}
	q := hr.Form
	action := q.Get("Action")
	call := Call{Service: FederationService, Operation: action, At: d.f.Now(), Params: map[string]any{}}

	var ferr *fedError
	switch action {
	case "getSigninToken", "login":
		fault, delay := d.f.takeFault(opKey{FederationService, action})
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-hr.Context().Done():
				t.Stop()
			}
		}
		switch fault {
		case Throttle:
			ferr = &fedError{http.StatusTooManyRequests, "Throttling", "Rate exceeded"}
		case Internal, LostResponse: // federation keeps no state: a lost answer is a failed one
			ferr = &fedError{http.StatusInternalServerError, "InternalFailure", "An internal error occurred."}
		}
	default:
		ferr = &fedError{http.StatusBadRequest, "InvalidAction", fmt.Sprintf("unknown Action %q: want getSigninToken or login", action)}
	}
	if ferr == nil {
		if action == "getSigninToken" {
			ferr = d.getSigninToken(w, q, &call)
		} else {
			ferr = d.login(w, q, &call)
		}
	}
	if ferr != nil {
		call.ErrorCode = ferr.code
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(ferr.status)
		_, _ = fmt.Fprintf(w, "awsfake federation: %s\n", ferr.msg)
	}
	d.f.record(call)
}

func badFederation(format string, args ...any) *fedError {
	return &fedError{http.StatusBadRequest, "InvalidRequest", fmt.Sprintf(format, args...)}
}

func (d *Federation) getSigninToken(w http.ResponseWriter, q url.Values, call *Call) *fedError {
	var sess struct {
		ID    string `json:"sessionId"`
		Key   string `json:"sessionKey"`
		Token string `json:"sessionToken"`
	}
	if err := json.Unmarshal([]byte(q.Get("Session")), &sess); err != nil {
		return badFederation("Session is not a JSON object: %v", err)
	}
	call.Params["sessionId"] = sess.ID
	if sess.ID == "" || sess.Key == "" || sess.Token == "" {
		return badFederation("Session needs sessionId, sessionKey and sessionToken")
	}
	issued, ok := d.f.sts.Issued(sess.ID, sess.Key, sess.Token)
	if !ok {
		return badFederation("Session does not carry credentials issued by STS")
	}
	call.Caller = issued.AssumedRoleARN
	now := d.f.Now()
	if !now.Before(issued.Expiration) {
		return badFederation("the session credentials have expired")
	}
	dur := 0
	if v, present := q["SessionDuration"]; present {
		call.Params["SessionDuration"] = v[0]
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 900 || n > 43200 {
			return badFederation("SessionDuration must be between 900 and 43200 seconds, got %q", v[0])
		}
		if assumedRoleARN.MatchString(issued.CallerARN) && n > 3600 {
			return badFederation("SessionDuration %d exceeds the 1 hour limit for credentials obtained by role chaining", n)
		}
		dur = n
	}
	token := "FakeSigninToken" + randomHex(32)
	d.f.update(func() { d.tokens[token] = signinToken{issued: issued, sessionDuration: dur, at: now} })
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"SigninToken": token})
	return nil
}

func (d *Federation) login(w http.ResponseWriter, q url.Values, call *Call) *fedError {
	d.f.mu.Lock()
	tok, ok := d.tokens[q.Get("SigninToken")]
	d.f.mu.Unlock()
	if !ok {
		return badFederation("unknown SigninToken")
	}
	call.Caller = tok.issued.AssumedRoleARN
	now := d.f.Now()
	if now.Sub(tok.at) >= SigninTokenLifetime {
		return badFederation("the SigninToken has expired (valid for %s)", SigninTokenLifetime)
	}
	dest := q.Get("Destination")
	call.Params["Destination"] = dest
	call.Params["Issuer"] = q.Get("Issuer")
	u, err := url.Parse(dest)
	if err != nil || u.Scheme != "https" || u.Host == "" || !strings.Contains(u.Host, "console") {
		return badFederation("Destination must be an https console URL, got %q", dest)
	}
	d.f.update(func() {
		d.logins = append(d.logins, Login{
			AccessKeyID: tok.issued.AccessKeyID, AssumedRoleARN: tok.issued.AssumedRoleARN,
			SessionDuration: tok.sessionDuration, Issuer: q.Get("Issuer"), Destination: dest, At: now,
		})
	})
	w.Header().Set("Location", dest)
	w.WriteHeader(http.StatusFound)
	return nil
}
