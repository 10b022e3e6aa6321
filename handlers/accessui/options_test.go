package accessui

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/infra/instindex"
	"github.com/tokken/tokken/policies"
)

// listed is a fleet as a static list, to fill the index without AWS.
type listed []domainjoin.Instance

func (l listed) List(context.Context) ([]domainjoin.Instance, error) { return l, nil }

// TestOptionsFromIndex answers the instance select from the store-backed
// index the way the ingress does: nothing in this test has an AWS client or
// configuration, so an answer shows the search needs no EC2.
func TestOptionsFromIndex(t *testing.T) {
	const (
		prodWeb = "i-0123456789abcdef0"
		prodDB  = "i-0aaaaaaaaaaaaaaa1"
		stage   = "i-0bbbbbbbbbbbbbbb2"
		fresh   = "i-0ccccccccccccccc3" // launched after the last refresh
	)
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "tokken.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	if _, err := instindex.Refresh(ctx, listed{
		{ID: prodWeb, Name: "web-01", State: "running", Tags: map[string]string{"Name": "web-01", "Env": "prod"}},
		{ID: prodDB, Name: "db-01", State: "stopped", Tags: map[string]string{"Name": "db-01", "Env": "prod"}},
		{ID: stage, Name: "stage-web", State: "running", Tags: map[string]string{"Name": "stage-web", "Env": "staging"}},
	}, store); err != nil {
		t.Fatal(err)
	}
	set, err := policies.Load("../../policies")
	if err != nil {
		t.Fatal(err)
	}
	f := &Feature{cat: set, search: instindex.Index{Store: store}}

	tests := []struct {
		name, action, profile, query string
		want                         []string // "value label"
	}{
		{"no profile yet", actionID(blockTargets), "", "WEB",
			[]string{prodWeb + " " + prodWeb + " web-01", stage + " " + stage + " stage-web"}},
		{"narrowed to the ssm profile's tags", actionID(blockTargets), "prod-ssm", "",
			[]string{prodWeb + " " + prodWeb + " web-01", prodDB + " " + prodDB + " db-01"}},
		{"id prefix", actionID(blockTargets), "prod-ssm", " i-0a", []string{prodDB + " " + prodDB + " db-01"}},
		{"an indexed id typed in full is offered once", actionID(blockTargets), "", strings.ToUpper(prodWeb),
			[]string{prodWeb + " " + prodWeb + " web-01"}},
		{"an id the index does not know yet is offered as typed", actionID(blockTargets), "prod-ssm", fresh,
			[]string{fresh + " " + fresh + " (not found yet; checked when you submit)"}},
		{"no match", actionID(blockTargets), "", "nothing", nil},
		{"another select", actionID(blockProfile), "", "web", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ic := slack.InteractionCallback{ActionID: tt.action, Value: tt.query}
			ic.View.State = form(map[string]slack.BlockAction{blockProfile: sel(tt.profile)})
			resp, err := f.Options(ctx, ic)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range resp.(*slack.OptionsResponse).Options {
				got = append(got, o.Value+" "+o.Text.Text)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("options %q, want %q", got, tt.want)
			}
		})
	}
}
