package domainjoin_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/infra/windows"
)

var (
	scheme = windows.DefaultScheme()
	t0     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func waitingOp(action domainjoin.Action) domainjoin.Operation {
	return domainjoin.Operation{
		ID: "d-op1", InstanceID: "i-0123456789abcdef0", InstanceName: "web-01", Action: action,
		State: domainjoin.StateWaiting, Started: t0, Updated: t0, Deadline: t0.Add(20 * time.Minute),
	}
}

func TestObserve(t *testing.T) {
	ack := func(kv ...string) map[string]string {
		m := map[string]string{"domain-ack": "d-op1"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	seen := func(op domainjoin.Operation, kv ...string) domainjoin.Operation {
		for i := 0; i+1 < len(kv); i += 2 {
			op.Seen = append(op.Seen, domainjoin.Progress{At: t0, Key: kv[i], Value: kv[i+1]})
		}
		return op
	}
	join, leave := waitingOp(domainjoin.ActionJoin), waitingOp(domainjoin.ActionLeave)
	pending := join
	pending.State, pending.Deadline = domainjoin.StatePendingApproval, time.Time{}
	done := join
	done.State = domainjoin.StateJoined

	tests := []struct {
		name      string
		op        domainjoin.Operation
		tags      map[string]string
		at        time.Duration
		wantState domainjoin.State
		wantLines []string
		wantSeen  int
		reason    string
	}{
		{"stale failure from another request is ignored", join,
			map[string]string{"domain-ack": "d-old", "domain-status": "failed", "domain-reason": "old"}, time.Minute,
			domainjoin.StateWaiting, nil, 0, ""},
		{"no tags yet", join, map[string]string{}, time.Minute, domainjoin.StateWaiting, nil, 0, ""},
		{"progress is recorded", join, ack("domain-status", "pending", "domain-progress", "joining"), time.Minute,
			domainjoin.StateWaiting, []string{"domain-progress: joining", "domain-status: pending"}, 2, ""},
		{"unchanged progress posts nothing", seen(join, "domain-progress", "joining", "domain-status", "pending"),
			ack("domain-status", "pending", "domain-progress", "joining"), time.Minute, domainjoin.StateWaiting, nil, 2, ""},
		{"joined ends a join", seen(join, "domain-progress", "rebooting"), ack("domain-status", "joined", "domain-progress", "done"), 5 * time.Minute,
			domainjoin.StateJoined, []string{"domain-progress: done", "domain-status: joined", "web-01 (i-0123456789abcdef0) is joined."}, 3, ""},
		{"joined does not end a leave", leave, ack("domain-status", "joined"), time.Minute,
			domainjoin.StateWaiting, []string{"domain-status: joined"}, 1, ""},
		{"unjoined ends a leave", leave, ack("domain-status", "unjoined"), time.Minute,
			domainjoin.StateUnjoined, []string{"domain-status: unjoined", "web-01 (i-0123456789abcdef0) is unjoined."}, 1, ""},
		{"failure carries the script's reason", join, ack("domain-status", "failed", "domain-reason", "The specified domain does not exist"), time.Minute,
			domainjoin.StateFailed, []string{"domain-status: failed", "Failed: The specified domain does not exist"}, 1, "The specified domain does not exist"},
		{"failure without reason", join, ack("domain-status", "failed"), time.Minute,
			domainjoin.StateFailed, []string{"domain-status: failed", "Failed: the instance reported failure without a reason"}, 1, "the instance reported failure without a reason"},
		{"reason is cleaned", join, ack("domain-status", "failed", "domain-reason", "bad\n\tthing\x00"), time.Minute,
			domainjoin.StateFailed, []string{"domain-status: failed", "Failed: bad thing"}, 1, "bad thing"},
		{"deadline passes with nothing reported", join, map[string]string{}, 20 * time.Minute,
			domainjoin.StateTimedOut, []string{"Timed out: no answer within 20m0s (last progress: nothing reported by the instance)"}, 0,
			"no answer within 20m0s (last progress: nothing reported by the instance)"},
		{"deadline names the last progress", seen(join, "domain-progress", "rebooting"), ack("domain-progress", "rebooting"), 21 * time.Minute,
			domainjoin.StateTimedOut, []string{"Timed out: no answer within 20m0s (last progress: rebooting)"}, 1, "no answer within 20m0s (last progress: rebooting)"},
		{"an outcome seen at the deadline wins", join, ack("domain-status", "joined"), 20 * time.Minute,
			domainjoin.StateJoined, []string{"domain-status: joined", "web-01 (i-0123456789abcdef0) is joined."}, 1, ""},
		{"pending approval is not observed", pending, ack("domain-status", "joined"), time.Hour, domainjoin.StatePendingApproval, nil, 0, ""},
		{"ended operations stay ended", done, ack("domain-status", "failed"), time.Hour, domainjoin.StateJoined, nil, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.op.Seen)
			got, lines := scheme.Observe(tc.op, tc.tags, t0.Add(tc.at))
			if got.State != tc.wantState {
				t.Errorf("state = %s, want %s", got.State, tc.wantState)
			}
			if !slices.Equal(lines, tc.wantLines) {
				t.Errorf("lines = %q\nwant    %q", lines, tc.wantLines)
			}
			if len(got.Seen) != tc.wantSeen {
				t.Errorf("seen = %v, want %d entries", got.Seen, tc.wantSeen)
			}
			if got.Reason != tc.reason {
				t.Errorf("reason = %q, want %q", got.Reason, tc.reason)
			}
			if len(lines) == 0 && !got.Updated.Equal(tc.op.Updated) {
				t.Errorf("Updated moved without a change")
			}
			if len(lines) > 0 && !got.Updated.Equal(t0.Add(tc.at)) {
				t.Errorf("Updated = %v, want the observation time", got.Updated)
			}
			if !slices.Equal(tc.op.Seen, before) {
				t.Errorf("Observe modified its input's Seen")
			}
		})
	}
}

func TestValidateRequest(t *testing.T) {
	inst := func(state, platform string, tags map[string]string) domainjoin.Instance {
		return domainjoin.Instance{ID: "i-0123456789abcdef0", Name: "web-01", State: state, Platform: platform, Tags: tags}
	}
	joined := map[string]string{"domain-status": "joined"}
	tests := []struct {
		name   string
		inst   domainjoin.Instance
		action domainjoin.Action
		force  bool
		want   string // substring of the refusal; "" = allowed
	}{
		{"running windows", inst("running", "windows", nil), domainjoin.ActionJoin, false, ""},
		{"terminated", inst("terminated", "windows", nil), domainjoin.ActionJoin, false, "is terminated"},
		{"shutting down", inst("shutting-down", "windows", nil), domainjoin.ActionLeave, false, "is shutting-down"},
		{"linux", inst("running", "", nil), domainjoin.ActionJoin, false, "not a Windows instance"},
		{"stopped", inst("stopped", "windows", nil), domainjoin.ActionJoin, false, "must be running"},
		{"already joined", inst("running", "windows", joined), domainjoin.ActionJoin, false, "already joined (tag domain-status=joined). Add --force"},
		{"already joined, forced", inst("running", "windows", joined), domainjoin.ActionJoin, true, ""},
		{"joined, leaving", inst("running", "windows", joined), domainjoin.ActionLeave, false, ""},
		{"already unjoined", inst("running", "Windows", map[string]string{"domain-status": "unjoined"}), domainjoin.ActionLeave, false, "already unjoined"},
		{"failed before, retry", inst("running", "windows", map[string]string{"domain-status": "failed"}), domainjoin.ActionJoin, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := scheme.ValidateRequest(tc.inst, tc.action, tc.force)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			u, ok := domainjoin.AsUserError(err)
			if !ok || !strings.Contains(u.Msg, tc.want) {
				t.Fatalf("err = %v, want a UserError containing %q", err, tc.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	a := domainjoin.Instance{ID: "i-0aaaaaaaaaaaaaaa1", Name: "web-01", State: "running"}
	b := domainjoin.Instance{ID: "i-0bbbbbbbbbbbbbbb2", Name: "web-01", State: "stopped"}
	dead := domainjoin.Instance{ID: "i-0ccccccccccccccc3", Name: "web-01", State: "terminated"}
	many := make([]domainjoin.Instance, 12)
	for i := range many {
		many[i] = domainjoin.Instance{ID: "i-0" + strings.Repeat(string(rune('a'+i)), 16), Name: "db", State: "running"}
	}
	tests := []struct {
		name   string
		ref    string
		cands  []domainjoin.Instance
		wantID string
		want   []string // substrings of the refusal
	}{
		{"id", a.ID, []domainjoin.Instance{a}, a.ID, nil},
		{"unknown id", "i-0123456789abcdef0", nil, "", []string{"No instance i-0123456789abcdef0"}},
		{"id not among candidates", "i-0123456789abcdef0", []domainjoin.Instance{a}, "", []string{"No instance i-0123456789abcdef0"}},
		{"unique name", "web-01", []domainjoin.Instance{a}, a.ID, nil},
		{"unknown name", "web-99", nil, "", []string{`No instance is named "web-99"`, "instance id"}},
		{"ambiguous name", "web-01", []domainjoin.Instance{b, a}, "", []string{"2 instances are named \"web-01\"", a.ID + " (running)", b.ID + " (stopped)"}},
		{"terminated namesake set aside", "web-01", []domainjoin.Instance{dead, a}, a.ID, nil},
		{"only a terminated one", "web-01", []domainjoin.Instance{dead}, dead.ID, nil},
		{"long list is cut", "db", many, "", []string{"12 instances", "and 2 more"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := domainjoin.Resolve(tc.ref, tc.cands)
			if tc.want == nil {
				if err != nil || got.ID != tc.wantID {
					t.Fatalf("Resolve = %v, %v; want %s", got.ID, err, tc.wantID)
				}
				return
			}
			u, ok := domainjoin.AsUserError(err)
			if !ok {
				t.Fatalf("err = %v, want a UserError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(u.Msg, w) {
					t.Errorf("refusal %q lacks %q", u.Msg, w)
				}
			}
		})
	}
}

func TestTagSchemeValidate(t *testing.T) {
	if err := scheme.Validate(); err != nil {
		t.Fatalf("default scheme: %v", err)
	}
	bad := []func(*domainjoin.TagScheme){
		func(s *domainjoin.TagScheme) { s.Control = "" },
		func(s *domainjoin.TagScheme) { s.Status = "domain status" },
		func(s *domainjoin.TagScheme) { s.Reason = "a/b" },
		func(s *domainjoin.TagScheme) { s.Ack = "_index" },
		func(s *domainjoin.TagScheme) { s.Progress = s.Status },
		func(s *domainjoin.TagScheme) { s.Failed = s.Joined },
		func(s *domainjoin.TagScheme) { s.Join = "it's" },
	}
	for i, mutate := range bad {
		s := scheme
		mutate(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("case %d: %+v validated", i, s)
		}
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 10, "plain"},
		{"  a \n\t b  ", 10, "a b"},
		{"abcdef", 3, "abc"},
		{"ab cd", 3, "ab"},
		{"x\x00\x1by", 10, "x y"},
		{"日本語テキスト", 3, "日本語"},
	}
	for _, tc := range tests {
		if got := domainjoin.Clean(tc.in, tc.max); got != tc.want {
			t.Errorf("Clean(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
