package access

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
)

func newReq(state State, needed int) *Request {
	r := &Request{ID: "r-000000000001", Requester: alice, Profile: "prod-ssm", Duration: time.Hour,
		State: state, ApprovalsNeeded: needed}
	switch state {
	case StateActivating:
		r.Activation = &Activation{Since: t0}
	case StateActive:
		r.Window = Window{ActivatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	case StateEnding, StateRevokeFailed:
		r.Window = Window{ActivatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		r.End = &End{Cause: CauseRevoked, By: admin, At: t0.Add(time.Minute)}
	case StateDenied:
		r.Denial = &Denial{By: bob, Why: "no"}
	}
	return r
}

func TestTransitions(t *testing.T) {
	at := t0.Add(2 * time.Hour)
	tests := []struct {
		name      string
		from      State
		needed    int
		do        func(r *Request) error
		wantState State
		wantErr   func(error) bool
	}{
		{"approve 1 of 1", StatePending, 1, func(r *Request) error { _, err := r.Approve(bob, at); return err }, StateActivating, nil},
		{"approve 1 of 2", StatePending, 2, func(r *Request) error { _, err := r.Approve(bob, at); return err }, StatePending, nil},
		{"approve own", StatePending, 1, func(r *Request) error { _, err := r.Approve(alice, at); return err }, StatePending, is(ErrSelfApproval)},
		{"approve active", StateActive, 1, func(r *Request) error { _, err := r.Approve(bob, at); return err }, StateActive, decided},
		{"approve denied names denier", StateDenied, 1, func(r *Request) error {
			_, err := r.Approve(carol, at)
			var d *ErrAlreadyDecided
			if errors.As(err, &d) && slices.Equal(d.By, []string{bob}) {
				return err
			}
			return errors.New("denier not named")
		}, StateDenied, decided},
		{"deny", StatePending, 1, func(r *Request) error { return r.Deny(bob, "no", at) }, StateDenied, nil},
		{"deny without reason", StatePending, 1, func(r *Request) error { return r.Deny(bob, "", at) }, StatePending, is(ErrReasonRequired)},
		{"deny own", StatePending, 1, func(r *Request) error { return r.Deny(alice, "x", at) }, StatePending, is(ErrSelfApproval)},
		{"deny activating", StateActivating, 1, func(r *Request) error { return r.Deny(bob, "x", at) }, StateActivating, decided},
		{"cancel", StatePending, 1, func(r *Request) error { return r.Cancel(alice, at) }, StateCancelled, nil},
		{"cancel by other", StatePending, 1, func(r *Request) error { return r.Cancel(bob, at) }, StatePending, is(ErrNotRequester)},
		{"cancel active", StateActive, 1, func(r *Request) error { return r.Cancel(alice, at) }, StateActive, decided},
		{"break glass", StatePending, 2, func(r *Request) error { return r.SelfApprove(alice, "sev1", at) }, StateActivating, nil},
		{"break glass no reason", StatePending, 2, func(r *Request) error { return r.SelfApprove(alice, "", at) }, StatePending, is(ErrReasonRequired)},
		{"claim", StateActivating, 1, func(r *Request) error { return r.ClaimActivation("a", at) }, StateActivating, nil},
		{"claim held", StateActivating, 1, func(r *Request) error {
			_ = r.ClaimActivation("a", at)
			return r.ClaimActivation("b", at.Add(claimLease-time.Second))
		}, StateActivating, is(ErrClaimed)},
		{"claim stale taken over", StateActivating, 1, func(r *Request) error {
			_ = r.ClaimActivation("a", at)
			return r.ClaimActivation("b", at.Add(claimLease))
		}, StateActivating, nil},
		{"activated", StateActivating, 1, func(r *Request) error {
			_ = r.ClaimActivation("a", at)
			return r.Activated("a", at)
		}, StateActive, nil},
		{"activated without claim", StateActivating, 1, func(r *Request) error {
			return r.Activated("a", at)
		}, StateActivating, is(ErrClaimLost)},
		{"fail unissued", StateActivating, 1, func(r *Request) error { return r.Fail(Failure{What: "x"}, false) }, StateFailed, nil},
		{"fail maybe issued ends first", StateActivating, 1, func(r *Request) error { return r.Fail(Failure{What: "x"}, true) }, StateEnding, nil},
		{"expire", StateActive, 1, func(r *Request) error { return r.BeginEnd(CauseExpired, System, "", at) }, StateEnding, nil},
		{"expire early", StateActive, 1, func(r *Request) error { return r.BeginEnd(CauseExpired, System, "", t0) }, StateActive, is(ErrNotYet)},
		{"revoke pending", StatePending, 1, func(r *Request) error { return r.BeginEnd(CauseRevoked, admin, "", at) }, StatePending, notActive},
		{"revoke ending", StateEnding, 1, func(r *Request) error { return r.BeginEnd(CauseRevoked, admin, "", at) }, StateEnding, decided},
		{"ended revoked", StateEnding, 1, func(r *Request) error { _, err := r.Ended(nil, at); return err }, StateRevoked, nil},
		{"ended after revoke_failed", StateRevokeFailed, 1, func(r *Request) error { _, err := r.Ended(nil, at); return err }, StateRevoked, nil},
		{"end failing", StateEnding, 1, func(r *Request) error {
			for range MaxEndAttempts - 1 {
				if failed, _ := r.EndFailed(nil, "x", MaxEndAttempts, at); failed {
					return errors.New("failed too early")
				}
			}
			if failed, _ := r.EndFailed(nil, "x", MaxEndAttempts, at); !failed {
				return errors.New("not failed after max attempts")
			}
			if failed, _ := r.EndFailed(nil, "x", MaxEndAttempts, at); failed {
				return errors.New("reported failed twice")
			}
			return nil
		}, StateRevokeFailed, nil},
		{"extend", StateActive, 1, func(r *Request) error {
			_, err := r.RequestExtension(Extension{ID: "x-1", Duration: time.Hour, Reason: "more", Requested: at}, alice)
			return err
		}, StateActive, nil},
		{"extend pending", StatePending, 1, func(r *Request) error {
			_, err := r.RequestExtension(Extension{ID: "x-1", Duration: time.Hour, Reason: "more"}, alice)
			return err
		}, StatePending, notActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReq(tt.from, tt.needed)
			before := len(r.History)
			err := tt.do(r)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.wantErr != nil && !tt.wantErr(err):
				t.Fatalf("error %v is not the one wanted", err)
			}
			if r.State != tt.wantState {
				t.Fatalf("state %s, want %s", r.State, tt.wantState)
			}
			if tt.from != tt.wantState && len(r.History) == before {
				t.Fatal("state changed without a history row")
			}
		})
	}
}

// TestActivationClaim follows one activation's claim through live
// holders, takeovers of dead ones and the RecordIssue fence: the window is
// fixed at the first claim, a fresh lease is never taken over, an expired
// one is, and issuing after a takeover is recorded as a re-issue.
func TestActivationClaim(t *testing.T) {
	type step struct {
		do      func(r *Request) error
		at      time.Duration // after t0
		wantErr func(error) bool
	}
	claim := func(tok string, at time.Duration) step {
		return step{func(r *Request) error { return r.ClaimActivation(tok, t0.Add(at)) }, at, nil}
	}
	claimed := func(tok string, at time.Duration) step {
		return step{func(r *Request) error { return r.ClaimActivation(tok, t0.Add(at)) }, at, is(ErrClaimed)}
	}
	renew := func(tok string, at time.Duration, want func(error) bool) step {
		return step{func(r *Request) error { return r.RenewActivation(tok, t0.Add(at)) }, at, want}
	}
	issue := func(tok string, at time.Duration, want func(error) bool) step {
		return step{func(r *Request) error { return r.RecordIssue(tok, t0.Add(at)) }, at, want}
	}
	release := func(tok string) step {
		return step{func(r *Request) error { return r.ReleaseActivation(tok, "deliver credentials: slack down") }, 0, nil}
	}
	activated := func(tok string, at time.Duration, want func(error) bool) step {
		return step{func(r *Request) error { return r.Activated(tok, t0.Add(at)) }, at, want}
	}
	const s = time.Second
	tests := []struct {
		name         string
		steps        []step
		wantState    State
		wantReissues []string // notes of ActReissued rows
		wantAttempts int
	}{
		{"one run", []step{claim("a", 0), issue("a", s, nil), activated("a", 2*s, nil)}, StateActive, nil, 0},
		{"live holder keeps its claim by renewing", []step{
			claim("a", 0), renew("a", claimRenewEvery, nil), claimed("b", claimLease+s),
			issue("a", claimLease+2*s, nil), activated("a", claimLease+3*s, nil),
		}, StateActive, nil, 0},
		{"renewal past the lease keeps it while nobody took over", []step{
			claim("a", 0), renew("a", 2*claimLease, nil), claimed("b", 2*claimLease+s),
		}, StateActivating, nil, 0},
		{"dead holder taken over after its lease; the taker re-issues", []step{
			claim("a", 0), claimed("b", claimLease-s), claim("b", claimLease),
			renew("a", claimLease+s, is(ErrClaimLost)), issue("a", claimLease+s, is(ErrClaimLost)),
			issue("b", claimLease+2*s, nil), activated("a", claimLease+3*s, is(ErrClaimLost)),
			activated("b", claimLease+3*s, nil),
		}, StateActive, []string{NoteReissuedInterrupted}, 1},
		{"holder that issued then died: re-issued once, not twice", []step{
			claim("a", 0), issue("a", s, nil), claim("b", s+claimLease), claimed("c", s+claimLease+s),
			issue("b", s+claimLease+s, nil), activated("b", s+claimLease+2*s, nil),
		}, StateActive, []string{NoteReissuedInterrupted}, 1},
		{"failed delivery released, retry re-issues", []step{
			claim("a", 0), issue("a", s, nil), release("a"), claim("b", 2*s), issue("b", 3*s, nil), activated("b", 4*s, nil),
		}, StateActive, []string{NoteReissuedUndelivered}, 1},
		{"takeover twice", []step{
			claim("a", 0), claim("b", claimLease), claim("c", 2*claimLease), issue("b", 2*claimLease, is(ErrClaimLost)),
			issue("c", 2*claimLease+s, nil), activated("c", 2*claimLease+s, nil),
		}, StateActive, []string{NoteReissuedInterrupted}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReq(StateActivating, 1)
			attempts := 0
			for i, st := range tt.steps {
				err := st.do(r)
				switch {
				case st.wantErr == nil && err != nil:
					t.Fatalf("step %d: unexpected error %v", i, err)
				case st.wantErr != nil && !st.wantErr(err):
					t.Fatalf("step %d: error %v is not the one wanted", i, err)
				}
				// The window is the first claim's, whoever holds it now.
				if want := (Window{ActivatedAt: t0, ExpiresAt: t0.Add(r.Duration)}); r.Window != want {
					t.Fatalf("step %d: window %+v, want %+v", i, r.Window, want)
				}
				if r.Activation != nil {
					attempts = r.Activation.Attempts
				}
			}
			if r.State != tt.wantState {
				t.Fatalf("state %s, want %s", r.State, tt.wantState)
			}
			var notes []string
			for _, h := range r.History {
				if h.Action == ActReissued {
					notes = append(notes, h.Note)
				}
			}
			if !slices.Equal(notes, tt.wantReissues) {
				t.Fatalf("re-issue rows %q, want %q", notes, tt.wantReissues)
			}
			if attempts != tt.wantAttempts {
				t.Fatalf("attempts %d, want %d", attempts, tt.wantAttempts)
			}
		})
	}
}

func TestExtensionLifecycle(t *testing.T) {
	r := newReq(StateActive, 2)
	if _, err := r.RequestExtension(Extension{ID: "x-1", Duration: 30 * time.Minute, Reason: "more", Requested: t0}, alice); err != nil {
		t.Fatal(err)
	}
	if q, err := r.ApproveExtension("x-1", bob, t0); q || err != nil {
		t.Fatalf("1 of 2: %v %v", q, err)
	}
	if _, err := r.ApproveExtension("x-1", alice, t0); !errors.Is(err, ErrSelfApproval) {
		t.Fatalf("self: %v", err)
	}
	if q, err := r.ApproveExtension("x-1", carol, t0); !q || err != nil {
		t.Fatalf("2 of 2: %v %v", q, err)
	}
	if err := r.ClaimExtension("x-1", "c", t0); err != nil {
		t.Fatal(err)
	}
	// The grant ends before the extension is applied: it lapses.
	r.State = StateEnding
	r.End = &End{Cause: CauseExpired, By: System, At: t0.Add(time.Hour)}
	if _, err := r.Ended(nil, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if applied, err := r.Extended("x-1", "c", t0.Add(time.Hour)); applied || err != nil {
		t.Fatalf("Extended after end = %v, %v; want lapsed", applied, err)
	}
	if !r.Window.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatal("lapsed extension moved the window")
	}

	r = newReq(StateActive, 0) // no approval needed: approved at once
	if ok, err := r.RequestExtension(Extension{ID: "x-2", Duration: time.Hour, Reason: "more"}, alice); !ok || err != nil {
		t.Fatalf("auto-approve: %v %v", ok, err)
	}
	if err := r.DenyExtension("x-2", bob, "no", t0); err == nil {
		t.Fatal("denied an approved extension")
	}
}

func TestEarly(t *testing.T) {
	r := newReq(StateActive, 1)
	_ = r.BeginEnd(CauseRevoked, admin, "", t0.Add(10*time.Minute))
	if !r.Early() {
		t.Fatal("revocation inside the window is not early")
	}
	r = newReq(StateActive, 1)
	_ = r.BeginEnd(CauseExpired, System, "", t0.Add(time.Hour))
	if r.Early() {
		t.Fatal("expiry at the window end is early")
	}
}

func TestExplainEveryError(t *testing.T) {
	errs := []error{
		ErrSelfApproval, ErrAlreadyApproved, ErrReasonRequired, ErrNotRequester, ErrNotBreakGlass,
		ErrExtensionPending, ErrUnknownExtension,
		&ErrAlreadyDecided{By: []string{bob}, State: StateActive}, &ErrNotActive{State: StatePending},
		&ErrNotAllowed{Action: "break_glass", Reasons: []string{"forbid policies/access.cedar:3"}},
		&ErrUnknownProfile{Name: "p", Allowed: []string{"a", "b"}},
		&ErrDurationTooLong{Profile: "p", Asked: 3 * time.Hour, Max: time.Hour},
		&ErrBadTarget{Profile: "p", ID: "i-12345678", Why: "nope"}, &ErrBreakGlassDisabled{Profile: "p"},
		&ErrUnknownRequest{ID: "r-1"}, &CommandError{Msg: "bad"},
	}
	seen := map[string]bool{}
	for _, err := range errs {
		msg, ok := Explain(err)
		if !ok || msg == "" || strings.Contains(msg, "our side") {
			t.Errorf("Explain(%v) = %q, %v", err, msg, ok)
		}
		if seen[msg] {
			t.Errorf("two errors explained as %q", msg)
		}
		seen[msg] = true
	}
	if msg, ok := Explain(errors.New("dynamodb: throttled")); ok || strings.Contains(msg, "dynamodb") {
		t.Errorf("internal error explained as %q, %v", msg, ok)
	}
	msg, _ := Explain(&ErrAlreadyDecided{By: []string{bob, carol}, State: StateActivating})
	if !strings.Contains(msg, "<@UBOB>, <@UCAROL>") {
		t.Errorf("loser not told who won: %q", msg)
	}
}

func is(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }

func decided(err error) bool {
	var d *ErrAlreadyDecided
	return errors.As(err, &d)
}

func notActive(err error) bool {
	var n *ErrNotActive
	return errors.As(err, &n)
}

func TestUnpostedAndPosted(t *testing.T) {
	r := newReq(StatePending, 1)
	if err := r.MarkUnposted("C0APPR", "not_in_channel", t0); err != nil {
		t.Fatal(err)
	}
	if u := r.Unposted; u == nil || u.Channel != "C0APPR" || u.Code != "not_in_channel" {
		t.Fatalf("unposted %+v", r.Unposted)
	}
	// The same problem again is no news; another one is.
	if err := r.MarkUnposted("C0APPR", "not_in_channel", t0.Add(time.Minute)); !errors.Is(err, bot.ErrNoChange) {
		t.Errorf("same problem again: %v", err)
	}
	if err := r.MarkUnposted("C0APPR", "is_archived", t0.Add(time.Minute)); err != nil {
		t.Errorf("another problem: %v", err)
	}
	if err := r.Posted(MessageRef{Channel: "C0APPR", TS: "1.2"}, t0.Add(time.Hour)); err != nil || r.Unposted != nil {
		t.Fatalf("posted: %v, unposted %+v", err, r.Unposted)
	}
	if err := r.Posted(MessageRef{Channel: "C0APPR", TS: "3.4"}, t0.Add(time.Hour)); !errors.Is(err, bot.ErrNoChange) || r.Message.TS != "1.2" {
		t.Errorf("posted twice: %v, message %+v", err, r.Message)
	}
	// A posted message whose updates Slack later refuses is marked too,
	// and an update that succeeds again clears it, keeping the message.
	if err := r.MarkUnposted("C0APPR", "not_in_channel", t0.Add(2*time.Hour)); err != nil || r.Unposted == nil {
		t.Errorf("a posted request whose update is refused: %v, unposted %+v", err, r.Unposted)
	}
	if err := r.Posted(MessageRef{Channel: "C0APPR", TS: "3.4"}, t0.Add(3*time.Hour)); err != nil || r.Unposted != nil || r.Message.TS != "1.2" {
		t.Errorf("updated again: %v, unposted %+v, message %+v", err, r.Unposted, r.Message)
	}
	var actions []string
	for _, h := range r.History {
		actions = append(actions, h.Action+" "+h.Note)
	}
	want := []string{ActUnposted + " C0APPR: not_in_channel", ActUnposted + " C0APPR: is_archived", ActPosted + " C0APPR",
		ActUnposted + " C0APPR: not_in_channel", ActPosted + " C0APPR"}
	if !slices.Equal(actions, want) {
		t.Errorf("history %q, want %q", actions, want)
	}
	// A request posted at once records nothing.
	r = newReq(StatePending, 1)
	if err := r.Posted(MessageRef{Channel: "C0APPR", TS: "1.2"}, t0); err != nil || len(r.History) != 0 {
		t.Errorf("first post: %v, history %+v", err, r.History)
	}
}

func TestExplainOffersBreakGlass(t *testing.T) {
	cmd := BreakGlassCommand(SubmitInput{Profile: "prod-ssm", Duration: 30 * time.Minute, Instances: []string{"i-0abc123def4567890"}, Reason: " db  down "})
	if cmd != "/access --break-glass prod-ssm 30m i-0abc123def4567890 db down" {
		t.Fatalf("command %q", cmd)
	}
	if c, err := ParseCommand(strings.TrimPrefix(cmd, "/access ")); err != nil || !c.BreakGlass || c.Profile != "prod-ssm" || c.Reason != "db down" {
		t.Fatalf("the offered command does not parse back: %+v, %v", c, err)
	}
	msg, _ := Explain(&ErrNotAllowed{Action: "request", BreakGlass: cmd})
	if !strings.Contains(msg, "You are not allowed to request here") || !strings.Contains(msg, "`"+cmd+"`") {
		t.Errorf("refusal %q does not offer %q", msg, cmd)
	}
	if msg, _ := Explain(&ErrNotAllowed{Action: "request"}); strings.Contains(msg, "break glass") {
		t.Errorf("refusal without break-glass mentions it: %q", msg)
	}
}
