package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bench/peer"
	"github.com/tokken/tokken/testkit/slackfake"
)

func TestParseInts(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"1,8", []int{1, 8}, false},
		{" 4 ", []int{4}, false},
		{"1,,8", nil, true},
		{"0", nil, true},
		{"-2", nil, true},
		{"x", nil, true},
	}
	for _, tt := range tests {
		got, err := parseInts(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("parseInts(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestMaxInWindow(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	tests := []struct {
		name  string
		times []time.Time
		want  int
	}{
		{"none", nil, 0},
		{"one", at(0), 1},
		{"exactly a second apart count apart", at(0, 1000, 2000), 1},
		{"paced 1.1 s", at(0, 1100, 2200, 3300), 1},
		{"two within a second", at(0, 999), 2},
		{"burst later", at(0, 1500, 1600, 1700, 5000), 3},
		{"window slides", at(0, 900, 1800, 2700), 2},
	}
	for _, tt := range tests {
		if got := maxInWindow(tt.times, time.Second); got != tt.want {
			t.Errorf("%s: maxInWindow = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestPercentiles(t *testing.T) {
	in := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	orig := slices.Clone(in)
	p := percentiles(in)
	if want := (Percentiles{P50: 5, P90: 9, P99: 10, Max: 10}); p != want {
		t.Errorf("percentiles = %+v, want %+v", p, want)
	}
	if !slices.Equal(in, orig) {
		t.Error("percentiles reordered its input")
	}
	if p := percentiles(nil); p != (Percentiles{}) {
		t.Errorf("percentiles(nil) = %+v", p)
	}
}

func TestStormBodies(t *testing.T) {
	fixtures := make([][]byte, len(stormFixtures))
	for i, name := range stormFixtures {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "handlers", "alertui", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		fixtures[i] = b
	}
	now := time.Unix(1795321800, 0)
	const n = 20
	bodies, err := stormBodies(fixtures, n, 4, now)
	if err != nil {
		t.Fatal(err)
	}
	ids, hosts := map[string]bool{}, map[string]bool{}
	found := map[int]bool{}
	for i, b := range bodies {
		var doc struct {
			Event string
			Host  struct{ ID, Name string }
			Alert struct {
				ID       string
				IsOpen   bool
				OpenedAt int64
			}
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
		if doc.Event != "alert" || !doc.Alert.IsOpen || doc.Alert.OpenedAt != now.Unix() {
			t.Errorf("body %d: event %q open %v opened %d", i, doc.Event, doc.Alert.IsOpen, doc.Alert.OpenedAt)
		}
		if env := stormEnvs[i%4]; !strings.HasPrefix(doc.Host.Name, env+"-") {
			t.Errorf("body %d: host %q lacks environment word %q", i, doc.Host.Name, env)
		}
		ids[doc.Alert.ID], hosts[doc.Host.ID] = true, true
		markers("CRITICAL: x — "+doc.Host.Name, found)
	}
	if len(ids) != n || len(hosts) != n || len(found) != n || !found[0] || !found[n-1] {
		t.Errorf("%d distinct alert ids, %d host ids, %d markers found; want %d each", len(ids), len(hosts), len(found), n)
	}

	bad := []struct {
		name     string
		fixtures [][]byte
		envs, n  int
	}{
		{"no fixtures", nil, 1, 1},
		{"too many environments", fixtures, len(stormEnvs) + 1, 1},
		{"no environment", fixtures, 0, 1},
		{"too many alerts", fixtures, 1, maxStormAlerts},
		{"not a host alert", [][]byte{[]byte(`{"event":"alert","alert":{}}`)}, 1, 1},
		{"not JSON", [][]byte{[]byte(`{`)}, 1, 1},
	}
	for _, tt := range bad {
		if _, err := stormBodies(tt.fixtures, tt.n, tt.envs, now); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func TestMarkers(t *testing.T) {
	got := map[int]bool{}
	markers("• CRITICAL CPU % — prod-host00042\n• OK — stg-host00007 (https://mackerel.io/orgs/acme/hosts/HID00099)\nhost123456 ghost00001", got)
	if len(got) != 2 || !got[42] || !got[7] {
		t.Errorf("markers = %v, want 42 and 7 only", got)
	}
}

func TestCopyPolicies(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	for name, body := range map[string]string{"access.cedar": "a", "hours.cedar": "h", "profiles.yaml": "p"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(src, "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyPolicies(src, dst, "hours.cedar"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"access.cedar", "profiles.yaml"}; !slices.Equal(names, want) {
		t.Errorf("copied %v, want %v", names, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "profiles.yaml")); string(b) != "p" {
		t.Errorf("profiles.yaml copied as %q", b)
	}
	if err := copyPolicies(filepath.Join(src, "missing"), dst); err == nil {
		t.Error("copying a missing directory did not fail")
	}
}

func TestObserverWait(t *testing.T) {
	o := newObserver(nil, approverChannel)
	ctx := context.Background()
	early := slackEvent{id: "r-000000000001", channel: "C1", ts: "1.000100"}
	o.publish("k1", early)
	o.publish("k1", slackEvent{id: "r-000000000002"}) // the first one stays
	if ev, err := o.wait(ctx, "k1", time.Second); err != nil || ev != early {
		t.Errorf("wait for an event already seen = %+v, %v", ev, err)
	}

	ch := o.subscribe("k2") // the flow waits before the call is seen
	late := slackEvent{id: "r-000000000003"}
	o.publish("k2", late)
	if ev, err := o.await(ctx, "k2", ch, time.Second); err != nil || ev != late {
		t.Errorf("waiter got %+v, %v; want %+v", ev, err, late)
	}

	if _, err := o.wait(ctx, "never", 10*time.Millisecond); err == nil || !strings.Contains(err.Error(), "not seen within") {
		t.Errorf("wait for a missing event: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := o.wait(cancelled, "never", time.Minute); err == nil {
		t.Error("wait with a cancelled context did not fail")
	}
	if len(o.waiters) != 0 {
		t.Errorf("%d waiters left behind", len(o.waiters))
	}
}

func TestObserverPost(t *testing.T) {
	o := newObserver(nil, approverChannel)
	const id = "r-0123456789ab"
	reason := []slack.Attachment{{Blocks: slack.Blocks{BlockSet: []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "> "+flowMark+" 42", false, false), nil, nil)}}}}
	creds := slack.Blocks{BlockSet: []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*CLI:*\n```\n"+credentialsMark+"x\n```", false, false), nil, nil)}}
	for _, c := range []struct {
		channel, text string
		blocks        slack.Blocks
		attachments   []slack.Attachment
		status        int
	}{
		{approverChannel, "Access " + id + " for prod-readonly", slack.Blocks{}, reason, 200},
		{approverChannel, "Access r-000000000000 for prod-readonly", slack.Blocks{}, nil, 200}, // no flow number
		{"D000000001", "Credentials for " + id, creds, nil, 200},
		{"D000000001", "Credentials for " + id, creds, nil, 200},                         // a second DM is counted
		{"D000000001", "Your request " + id + " was approved", slack.Blocks{}, nil, 200}, // not credentials
		{"C0AUDIT001", "Credentials for " + id, creds, nil, 200},                         // not a DM
		{"D000000001", "Credentials for r-zzzzzzzzzzzz", creds, nil, 429},                // refused
		{approverChannel, "no request id here", slack.Blocks{}, nil, 200},                // ignored
	} {
		call := slackfakeCall(c.channel, c.text, c.blocks, c.status)
		call.Attachments = c.attachments
		o.post(call)
	}
	if ev, ok := o.seen[approverKey(42)]; !ok || ev.id != id || ev.channel != approverChannel {
		t.Errorf("approver message of flow 42: %+v, %v", ev, ok)
	}
	if len(o.seen) != 2 {
		t.Errorf("%d events seen, want the approver message and the credentials DM: %v", len(o.seen), o.seen)
	}
	if _, ok := o.seen[credentialsKey(id)]; !ok {
		t.Error("credentials DM not recognised")
	}
	if got := o.credentialDMs(); len(got) != 1 || got[id] != 2 {
		t.Errorf("credential DMs = %v, want %s: 2", got, id)
	}
}

// slackfakeCall is a recorded chat.postMessage as slackfake keeps it.
func slackfakeCall(channel, text string, blocks slack.Blocks, status int) slackfake.Call {
	c := slackfake.Call{Method: "chat.postMessage", Channel: channel, Text: text, Blocks: blocks, Status: status}
	if status != 200 {
		c.Error = "ratelimited"
	}
	return c
}

func TestFailTB(t *testing.T) {
	tb := &failTB{TB: peer.NewTB()}
	if tb.Err() != nil {
		t.Fatal("fresh failTB has an error")
	}
	tb.Fatalf("first %d", 1)
	tb.Errorf("second")
	if err := tb.Err(); err == nil || err.Error() != "first 1" {
		t.Errorf("Err = %v, want the first failure", err)
	}
}

func TestWriteMarkdownVerdicts(t *testing.T) {
	date := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	rep := Report{
		Date: date,
		Approve: &ApproveRuns{Profile: approveProfile, Runs: []FlowRun{
			{InFlight: 1, Flows: 10, ClickToDM: Percentiles{P50: 5 * time.Millisecond, P99: 20 * time.Millisecond}, AssumeRoles: 10, Delivered: 10},
			{InFlight: 8, Flows: 10, ClickToDM: Percentiles{P50: time.Second, P99: 3 * time.Second}, AssumeRoles: 11, Delivered: 10,
				Check: "STS issued 11 credentials for 10 delivered grants"},
		}},
		Storm: &StormResult{
			Alerts: 100, Accepted: 100, Deliveries: 100, Records: 100, Listed: 60, Over: time.Minute,
			Channels: []ChannelStats{{Channel: "C0PRODALERTS", Listed: 60, TopLevel: 11, Posts: 20, MaxPerSecond: 1, MaxAttemptedPerSecond: 2, Limited: 1}},
		},
	}
	var b strings.Builder
	writeMarkdown(&b, rep)
	out := b.String()
	for _, want := range []string{
		"| 1 | 10 | 0 | 5.00 ms |",
		"1 in flight: click → DM p99 20.00 ms (target ≤ 2.00 s: met)",
		"8 in flight: click → DM p99 3.00 s (target ≤ 2.00 s: **missed**)",
		"10 AssumeRole calls for 10 grants delivered (warm-up included): each issued once and DMed once",
		"STS issued 11 credentials for 10 delivered grants",
		"100 of 100 webhooks stored as deliveries before their 202: met",
		"60 of 100 alerts (**not all listed**)",
		"max 1 accepted in any 1-s window, 1 answered 429: met",
		"| C0PRODALERTS | 60 | 11 | 20 | 1 | 1 | 2 | 0 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
