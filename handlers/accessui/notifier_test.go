package accessui

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/slackapi"
	"github.com/tokken/tokken/testkit/slackfake"
)

// recSlack records what the notifier and directory do.
type recSlack struct {
	mu         sync.Mutex
	posts      []string // channel of each chat.postMessage
	updates    []string
	dms        []string
	users      map[string]slackapi.User
	groups     map[string][]string
	groupCalls int
	groupErr   error
}

func (s *recSlack) PostMessage(_ context.Context, ch string, _ slackapi.Message) (slackapi.MessageRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts = append(s.posts, ch)
	return slackapi.MessageRef{Channel: ch, TS: "1.1"}, nil
}
func (s *recSlack) UpdateMessage(_ context.Context, ref slackapi.MessageRef, _ slackapi.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updates = append(s.updates, ref.Channel+"/"+ref.TS)
	return nil
}
func (s *recSlack) PostEphemeral(context.Context, string, string, slackapi.Message) error { return nil }
func (s *recSlack) DM(_ context.Context, user string, _ slackapi.Message) (slackapi.MessageRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dms = append(s.dms, user)
	return slackapi.MessageRef{Channel: "D" + user, TS: "2.2"}, nil
}
func (s *recSlack) PostToResponseURL(context.Context, string, slackapi.Response) error { return nil }
func (s *recSlack) OpenView(context.Context, string, slack.ModalViewRequest) (*slack.View, error) {
	return &slack.View{}, nil
}
func (s *recSlack) UserInfo(_ context.Context, id string) (slackapi.User, error) {
	u, ok := s.users[id]
	if !ok {
		return slackapi.User{}, errors.New("user_not_found")
	}
	return u, nil
}
func (s *recSlack) UserGroupMembers(_ context.Context, g string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groupCalls++
	if s.groupErr != nil {
		return nil, s.groupErr
	}
	return s.groups[g], nil
}

type catalogue []access.Profile

func (c catalogue) Profile(name string) (access.Profile, bool) {
	i := slices.IndexFunc(c, func(p access.Profile) bool { return p.Name == name })
	if i < 0 {
		return access.Profile{}, false
	}
	return c[i], true
}
func (c catalogue) Profiles() []access.Profile { return c }

var cat = catalogue{{Name: "prod-ssm", ApproverChannel: "C0APPROVE1"}, {Name: "dev", ApproverChannel: ""}}

func TestNotifierChangedPostsThenUpdates(t *testing.T) {
	s := &recSlack{}
	n := &Notifier{slack: s, cat: cat, loc: time.UTC}
	r := baseRequest()
	ref, err := n.Changed(context.Background(), r)
	if err != nil || ref.Channel != "C0APPROVE1" {
		t.Fatalf("first render: %+v %v", ref, err)
	}
	r.Message = ref
	if _, err := n.Changed(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if len(s.posts) != 1 || len(s.updates) != 1 {
		t.Fatalf("posts %v updates %v", s.posts, s.updates)
	}
	// A profile without an approver channel is tracked in the requester's DM.
	r2 := baseRequest()
	r2.Profile = "dev"
	if ref, err := n.Changed(context.Background(), r2); err != nil || ref.Channel != "D"+r2.Requester {
		t.Fatalf("no-channel render: %+v %v", ref, err)
	}
}

func TestNotifierAlertChannels(t *testing.T) {
	tests := []struct {
		name       string
		audit, ops string
		to         access.AlertChannel
		profile    string
		want       string
	}{
		{"audit", "C0AUDIT01", "C0OPS0001", access.AlertAudit, "prod-ssm", "C0AUDIT01"},
		{"ops", "C0AUDIT01", "C0OPS0001", access.AlertOps, "prod-ssm", "C0OPS0001"},
		{"ops falls back to audit", "C0AUDIT01", "", access.AlertOps, "prod-ssm", "C0AUDIT01"},
		{"falls back to the approver channel", "", "", access.AlertOps, "prod-ssm", "C0APPROVE1"},
		{"nowhere", "", "", access.AlertAudit, "dev", ""},
	}
	for _, tt := range tests {
		s := &recSlack{}
		n := &Notifier{slack: s, cat: cat, audit: tt.audit, ops: tt.ops, loc: time.UTC}
		r := baseRequest()
		r.Profile = tt.profile
		err := n.Alert(context.Background(), access.Alert{Channel: tt.to, Action: access.ActRevokeFailed, Request: r, Text: "x"})
		if tt.want == "" {
			if err == nil {
				t.Errorf("%s: no error for an alert with nowhere to go", tt.name)
			}
			continue
		}
		if err != nil || !slices.Equal(s.posts, []string{tt.want}) {
			t.Errorf("%s: posted to %v (%v), want %s", tt.name, s.posts, err, tt.want)
		}
	}
}

func TestDirectory(t *testing.T) {
	s := &recSlack{
		users: map[string]slackapi.User{
			"U0ALICE001": {ID: "U0ALICE001", Email: "alice@example.com"},
			"U0GONE0001": {ID: "U0GONE0001", Deleted: true},
			"B0BOT00001": {ID: "B0BOT00001", IsBot: true},
		},
		groups: map[string][]string{"S0SRE00001": {"U0ALICE001"}, "S0ONCALL01": {"U0BOB00001"}},
	}
	d := NewDirectory(s, []string{"S0SRE00001", "S0ONCALL01"}, nil)
	now := t0
	d.now = func() time.Time { return now }
	ctx := context.Background()
	p, err := d.Lookup(ctx, "U0ALICE001")
	if err != nil || p.Email != "alice@example.com" || !slices.Equal(p.SlackGroups, []string{"S0SRE00001"}) {
		t.Fatalf("Lookup = %+v, %v", p, err)
	}
	if _, err := d.Lookup(ctx, "U0ALICE001"); err != nil || s.groupCalls != 2 {
		t.Fatalf("second lookup within the TTL listed groups again: %d calls, %v", s.groupCalls, err)
	}
	now = now.Add(GroupTTL)
	if _, err := d.Lookup(ctx, "U0ALICE001"); err != nil || s.groupCalls != 4 {
		t.Fatalf("after the TTL: %d calls, %v", s.groupCalls, err)
	}
	for _, id := range []string{"U0GONE0001", "B0BOT00001", "U0NOBODY01"} {
		if _, err := d.Lookup(ctx, id); err == nil {
			t.Errorf("Lookup(%s): no error", id)
		}
	}
	// A user of another team (Slack Connect) or a stranger whose e-mail
	// matches a member's gets no e-mail: groups.yaml addresses never make
	// them a member.
	d.Team = func(context.Context) (string, error) { return "T0HOME0001", nil }
	s.users["U0EXT00001"] = slackapi.User{ID: "U0EXT00001", Email: "alice@example.com", TeamID: "T0OTHER001"}
	s.users["U0STRANGE1"] = slackapi.User{ID: "U0STRANGE1", Email: "alice@example.com", IsStranger: true}
	s.users["U0HOME0001"] = slackapi.User{ID: "U0HOME0001", Email: "carol@example.com", TeamID: "T0HOME0001"}
	for id, want := range map[string]string{"U0EXT00001": "", "U0STRANGE1": "", "U0HOME0001": "carol@example.com"} {
		if p, err := d.Lookup(ctx, id); err != nil || p.Email != want {
			t.Errorf("Lookup(%s) = %+v, %v; want e-mail %q", id, p, err, want)
		}
	}
	// Groups that cannot be listed only take permissions away.
	s.groupErr = errors.New("missing_scope")
	now = now.Add(GroupTTL)
	if p, err := d.Lookup(ctx, "U0ALICE001"); err != nil || len(p.SlackGroups) != 0 {
		t.Fatalf("with groups unavailable: %+v %v", p, err)
	}
}

// A group Slack refuses to list (deleted or mistyped in groups.yaml) is
// asked about once per GroupTTL, not on every lookup; a failure without
// Slack's answer (the network, a 5xx) is asked again at the next lookup.
func TestDirectoryCachesGroupRefusal(t *testing.T) {
	fake := slackfake.New(t)
	fake.AddUser(slackfake.User{ID: "U0ALICE001", Name: "alice", Email: "alice@example.com"})
	fake.AddUserGroup("S0SRE00001", "U0ALICE001")
	client := slackapi.New(fake.Token(), slackapi.Options{APIURL: fake.APIURL(), Logger: slog.New(slog.DiscardHandler), MaxAttempts: 1})
	d := NewDirectory(client, []string{"S0SRE00001", "S0GONE0001"}, slog.New(slog.DiscardHandler))
	now := t0
	d.now = func() time.Time { return now }
	ctx := context.Background()
	listed := func() int { return len(fake.Calls("usergroups.users.list")) }

	for range 3 {
		p, err := d.Lookup(ctx, "U0ALICE001")
		if err != nil || !slices.Equal(p.SlackGroups, []string{"S0SRE00001"}) {
			t.Fatalf("Lookup = %+v, %v", p, err)
		}
	}
	if n := listed(); n != 2 {
		t.Fatalf("3 lookups within the TTL listed groups %d times, want 2 (each group once)", n)
	}

	now = now.Add(GroupTTL)
	fake.FailNext("usergroups.users.list", 1, http.StatusServiceUnavailable)
	if p, err := d.Lookup(ctx, "U0ALICE001"); err != nil || len(p.SlackGroups) != 0 {
		t.Fatalf("with the group list failing: %+v, %v", p, err)
	}
	if p, err := d.Lookup(ctx, "U0ALICE001"); err != nil || !slices.Equal(p.SlackGroups, []string{"S0SRE00001"}) {
		t.Fatalf("after a failure without Slack's answer, the group is asked again: %+v, %v", p, err)
	}
	if n := listed(); n != 5 {
		t.Fatalf("after the TTL: %d usergroups.users.list calls, want 5 (both groups again, S0SRE00001 once more after its 503)", n)
	}
}
