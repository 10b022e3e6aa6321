package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

// TestInstanceSearchFromIndex runs `tokken serve` against awsfake's EC2:
// the start-up sweep indexes the live instances, and the access modal's
// instance select, a signed /slack/options request, is answered from the
// index (names in any case, the chosen profile's tags applied, terminated
// instances left out) without calling AWS.
func TestInstanceSearchFromIndex(t *testing.T) {
	t.Parallel()
	const (
		web     = "i-0e2e0000000000001" // WebShop-01, Env=prod, running
		db      = "i-0e2e0000000000002" // db-01, Env=prod, stopped
		stage   = "i-0e2e0000000000003" // web-stage, Env=staging
		retired = "i-0e2e0000000000004" // web-old, Env=prod, terminated
	)
	sl, fake := slackfake.New(t), awsfake.New(t)
	for _, in := range []awsfake.Instance{
		{ID: web, Name: "WebShop-01", Tags: map[string]string{"Env": "prod"}},
		{ID: db, Name: "db-01", State: "stopped", Tags: map[string]string{"Env": "prod"}},
		{ID: stage, Name: "web-stage", Tags: map[string]string{"Env": "staging"}},
		{ID: retired, Name: "web-old", State: "terminated", Tags: map[string]string{"Env": "prod"}},
	} {
		fake.EC2().AddInstance(in)
	}
	var extra []string
	for k, v := range fake.Env() {
		extra = append(extra, k+"="+v)
	}
	s := startServe(t, sl, extra...)
	waitLog(t, s, "instance index refreshed")

	options := func(profile, query string) string {
		t.Helper()
		state := &slack.ViewState{Values: map[string]map[string]slack.BlockAction{
			"profile": {"access:profile": {SelectedOption: slack.OptionBlockObject{Value: profile}}},
		}}
		req, _ := sl.Interaction(t, s.base+"/slack/options", slack.InteractionCallback{
			Type: slack.InteractionTypeBlockSuggestion, User: slack.User{ID: "U0ONCALL01"}, ActionID: "access:targets", BlockID: "targets",
			Value: query, View: slack.View{ID: "V1", CallbackID: accessui.CallbackRequest, State: state},
		})
		status, body := do(t, req)
		if status != 200 {
			t.Fatalf("options %q: %d %s", query, status, body)
		}
		var resp slack.OptionsResponse
		if err := json.Unmarshal([]byte(body), &resp); err != nil {
			t.Fatalf("options %q: %v in %s", query, err, body)
		}
		var got []string
		for _, o := range resp.Options {
			got = append(got, o.Value)
		}
		return strings.Join(got, " ")
	}

	before := len(fake.Calls("", ""))
	tests := []struct{ profile, query, want string }{
		{"", "web", stage + " " + web},         // both start with "web" in any case: by name; web-old is terminated
		{"prod-ssm", "", web + " " + db},       // only Env=prod, running first
		{"prod-ssm", "i-0e2e", web + " " + db}, // id prefix
		{"", "shop", web},
	}
	for _, tt := range tests {
		if got := options(tt.profile, tt.query); got != tt.want {
			t.Errorf("options(profile %q, %q) = %q, want %q", tt.profile, tt.query, got, tt.want)
		}
	}
	if calls := fake.Calls("", ""); len(calls) != before {
		t.Errorf("answering the instance select made %d AWS calls (first: %s %s)", len(calls)-before, calls[before].Service, calls[before].Operation)
	}
}
