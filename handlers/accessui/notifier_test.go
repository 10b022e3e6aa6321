package accessui

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/slackapi"
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
