package ec2fleet_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/infra/ec2fleet"
	"github.com/tokken/tokken/testkit/awsfake"
)

const (
	web1    = "i-0123456789abcdef0" // web-01, running
	web2    = "i-0aaaaaaaaaaaaaaa2" // Web-02, stopped
	db1     = "i-0bbbbbbbbbbbbbbb1" // db-01, running
	legacy  = "i-0ccccccccccccccc3" // WEB-legacy, terminated
	noname  = "i-0abcd0000000000f1" // no Name tag, running
	oldWeb1 = "i-0ddddddddddddddd4" // web-01 again, terminated
	odd     = "i-0eeeeeeeeeeeeeee5" // odd*name, running
)

func newFleet(t *testing.T) (*awsfake.Fake, *ec2fleet.Fleet) {
	t.Helper()
	f := awsfake.New(t)
	for _, in := range []awsfake.Instance{
		{ID: web1, Name: "web-01", Platform: "windows", Tags: map[string]string{"env": "prod"}},
		{ID: web2, Name: "Web-02", State: "stopped", Tags: map[string]string{"env": "prod"}},
		{ID: db1, Name: "db-01", Tags: map[string]string{"env": "staging"}},
		{ID: legacy, Name: "WEB-legacy", State: "terminated"},
		{ID: noname},
		{ID: oldWeb1, Name: "web-01", State: "terminated"},
		{ID: odd, Name: "odd*name"},
	} {
		f.EC2().AddInstance(in)
	}
	return f, ec2fleet.New(f.Config(context.Background()))
}

func ids(ts []bot.Target) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func TestSearch(t *testing.T) {
	_, fl := newFleet(t)
	cases := []struct {
		query string
		want  []string
	}{
		{"web", []string{web1, web2}},                // running first; terminated WEB-legacy left out
		{"WEB", []string{web1, web2}},                // case-insensitive
		{"  Web-0 ", []string{web1, web2}},           // trimmed
		{"eb-0", []string{web1, web2}},               // substring of the name
		{"01", []string{db1, web1}},                  // substring, running, by name
		{"i-0abcd", []string{noname}},                // id prefix
		{"i-0a", []string{noname, web2}},             // id prefix; running first
		{"odd*", []string{odd}},                      // wildcard characters are literal
		{"nothing-like-this", []string{}},            // no match
		{"", []string{db1, odd, web1, noname, web2}}, // everything live: running by name, then stopped
	}
	for _, tc := range cases {
		got, err := fl.Search(context.Background(), tc.query, 0)
		if err != nil {
			t.Errorf("Search(%q): %v", tc.query, err)
			continue
		}
		if !slices.Equal(ids(got), tc.want) {
			t.Errorf("Search(%q) = %v, want %v", tc.query, ids(got), tc.want)
		}
	}
	got, _ := fl.Search(context.Background(), "web-01", 0)
	if len(got) != 1 || got[0].Tags["env"] != "prod" || got[0].Tags["Name"] != "web-01" {
		t.Errorf("Search result carries tags %v", got)
	}
}

func TestSearchCaps(t *testing.T) {
	f, fl := newFleet(t)
	for i := range 130 {
		f.EC2().AddInstance(awsfake.Instance{ID: fmt.Sprintf("i-1%016x", i), Name: fmt.Sprintf("app-%03d", i)})
	}
	for _, tc := range []struct{ limit, want int }{{0, 100}, {500, 100}, {25, 25}} {
		got, err := fl.Search(context.Background(), "app", tc.limit)
		if err != nil || len(got) != tc.want {
			t.Errorf("Search(app, %d) = %d results, %v; want %d", tc.limit, len(got), err, tc.want)
		}
	}
	got, _ := fl.Search(context.Background(), "app", 3)
	if !slices.Equal(ids(got), []string{"i-10000000000000000", "i-10000000000000001", "i-10000000000000002"}) {
		t.Errorf("first three apps = %v", ids(got))
	}
}

func TestFind(t *testing.T) {
	_, fl := newFleet(t)
	cases := []struct {
		ref  string
		want []string
	}{
		{web1, []string{web1}},
		{legacy, []string{legacy}},          // terminated instances are included
		{"web-01", []string{web1, oldWeb1}}, // every instance with the exact name
		{"Web-01", nil},                     // names match exactly
		{"web", nil},                        // not a prefix search
		{"odd*name", []string{odd}},         // wildcard characters are literal
		{"odd*", nil},
		{"i-0fffffffffffffff9", nil}, // unknown id: empty, no error
		{"", nil},
	}
	for _, tc := range cases {
		got, err := fl.Find(context.Background(), tc.ref)
		if err != nil {
			t.Errorf("Find(%q): %v", tc.ref, err)
			continue
		}
		var gotIDs []string
		for _, in := range got {
			gotIDs = append(gotIDs, in.ID)
		}
		slices.Sort(gotIDs)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(gotIDs, want) {
			t.Errorf("Find(%q) = %v, want %v", tc.ref, gotIDs, want)
		}
	}
	got, _ := fl.Find(context.Background(), web1)
	if len(got) != 1 || got[0].Name != "web-01" || got[0].State != "running" || got[0].Platform != "windows" || got[0].Tags["env"] != "prod" {
		t.Errorf("Find(%s) = %+v", web1, got)
	}
	got, _ = fl.Find(context.Background(), legacy)
	if len(got) != 1 || got[0].State != "terminated" || !got[0].Gone() {
		t.Errorf("Find(%s) = %+v, want it terminated", legacy, got)
	}
}

func TestInstances(t *testing.T) {
	_, fl := newFleet(t)
	got, err := fl.Instances(context.Background(), []string{db1, "i-0fffffffffffffff9", legacy, web1, db1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), []string{db1, web1}) || got[0].Tags["env"] != "staging" {
		t.Errorf("Instances = %+v, want db-01 and web-01 with tags (unknown and terminated left out)", got)
	}
	if _, err := fl.Instances(context.Background(), []string{"web-01"}); err == nil || !bot.IsPermanent(err) {
		t.Errorf("malformed id: err = %v, want permanent", err)
	}
	if got, err := fl.Instances(context.Background(), nil); err != nil || len(got) != 0 {
		t.Errorf("no ids = %v, %v", got, err)
	}
}

func TestSetTagsAndReboot(t *testing.T) {
	f, fl := newFleet(t)
	ctx := context.Background()
	if err := fl.SetTags(ctx, web1, map[string]string{"tokken:domain": "join", "tokken:op": "d-1"}); err != nil {
		t.Fatalf("SetTags: %v", err)
	}
	tags := f.EC2().Tags(web1)
	if tags["tokken:domain"] != "join" || tags["tokken:op"] != "d-1" || tags["env"] != "prod" {
		t.Errorf("tags after SetTags = %v", tags)
	}
	if err := fl.Reboot(ctx, web1); err != nil || f.EC2().RebootCount(web1) != 1 {
		t.Errorf("Reboot = %v, count %d", err, f.EC2().RebootCount(web1))
	}

	permanent := []struct {
		name string
		err  error
		want string
	}{
		{"tag unknown instance", fl.SetTags(ctx, "i-0fffffffffffffff9", map[string]string{"a": "b"}), "InvalidInstanceID.NotFound"},
		{"tag malformed id", fl.SetTags(ctx, "i-XYZ", map[string]string{"a": "b"}), "InvalidInstanceID.Malformed"},
		{"reserved tag key", fl.SetTags(ctx, web1, map[string]string{"aws:x": "b"}), "InvalidParameterValue"},
		{"reboot stopped instance", fl.Reboot(ctx, web2), "IncorrectState"},
		{"reboot unknown instance", fl.Reboot(ctx, "i-0fffffffffffffff9"), "InvalidInstanceID.NotFound"},
	}
	for _, tc := range permanent {
		if tc.err == nil || !bot.IsPermanent(tc.err) || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want a permanent %s", tc.name, tc.err, tc.want)
		}
	}
}

func TestThrottlingIsRetried(t *testing.T) {
	f, fl := newFleet(t)
	ctx := context.Background()
	for _, op := range []string{"DescribeInstances", "CreateTags", "RebootInstances"} {
		f.Fail(awsfake.EC2Service, op, 1, awsfake.Throttle)
		f.Fail(awsfake.EC2Service, op, 1, awsfake.Internal)
	}
	if got, err := fl.Search(ctx, "web", 0); err != nil || len(got) != 2 {
		t.Errorf("Search under throttling = %v, %v", ids(got), err)
	}
	if err := fl.SetTags(ctx, web1, map[string]string{"a": "b"}); err != nil {
		t.Errorf("SetTags under throttling: %v", err)
	}
	if err := fl.Reboot(ctx, web1); err != nil {
		t.Errorf("Reboot under throttling: %v", err)
	}
	for _, op := range []string{"DescribeInstances", "CreateTags", "RebootInstances"} {
		calls := f.Calls(awsfake.EC2Service, op)
		if len(calls) < 3 || calls[0].ErrorCode != "RequestLimitExceeded" || calls[1].ErrorCode != "InternalError" || calls[2].ErrorCode != "" {
			t.Errorf("%s attempts: %d calls, want throttled, failed, then success", op, len(calls))
		}
	}
}

func TestList(t *testing.T) {
	f, fl := newFleet(t)
	for i := range 1100 { // more than one DescribeInstances page
		f.EC2().AddInstance(awsfake.Instance{ID: fmt.Sprintf("i-2%016x", i), Name: fmt.Sprintf("batch-%04d", i), Tags: map[string]string{"env": "batch"}})
	}
	got, err := fl.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]domainjoin.Instance{}
	for _, in := range got {
		byID[in.ID] = in
	}
	if len(got) != 1105 || len(byID) != 1105 {
		t.Fatalf("List = %d instances (%d distinct), want the 1,105 live ones", len(got), len(byID))
	}
	for _, gone := range []string{legacy, oldWeb1} {
		if _, ok := byID[gone]; ok {
			t.Errorf("terminated %s listed", gone)
		}
	}
	if in := byID[web1]; in.Name != "web-01" || in.State != "running" || in.Platform != "windows" || in.Tags["env"] != "prod" {
		t.Errorf("web-01 listed as %+v", in)
	}
	if in := byID[web2]; in.State != "stopped" {
		t.Errorf("Web-02 listed as %+v, want stopped", in)
	}
	// Two pages: the first without a NextToken, the second with one. The
	// SDK may retry a call whose answer was lost on a loaded machine, so
	// pages are counted, not calls.
	pages := map[string]bool{}
	for _, c := range f.Calls(awsfake.EC2Service, "DescribeInstances") {
		pages[c.Param("NextToken")] = true
	}
	if len(pages) != 2 || !pages[""] {
		t.Errorf("List asked for pages %v, want the first and one more", pages)
	}
}
