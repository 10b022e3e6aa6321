package alertui

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/alert"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

// fixtures are the payloads the parsers read; rendering is tested on
// what the real parsers produce.
const fixtures = "testdata"

func parseFixture(t *testing.T, name string) alert.Event {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.HasPrefix(name, "mackerel-"):
		ev, err := ParseMackerel(body)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	case strings.HasPrefix(name, "eventbridge-"):
		ev, err := ParseCloudWatchEventBridge(body)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	case strings.HasPrefix(name, "sns-"):
		var sns events.SNSEvent
		if err := json.Unmarshal(body, &sns); err != nil {
			t.Fatal(err)
		}
		evs, err := ParseCloudWatchSNS(sns)
		if err != nil {
			t.Fatal(err)
		}
		return evs[0]
	}
	t.Fatalf("no parser for %s", name)
	return alert.Event{}
}

func parseAlert(t *testing.T, name string) alert.Alert {
	t.Helper()
	ev := parseFixture(t, name)
	if ev.Alert == nil {
		t.Fatalf("%s: not an alert", name)
	}
	return *ev.Alert
}

var (
	ackAt   = time.Date(2024, 6, 3, 5, 3, 0, 0, time.UTC)
	silence = time.Date(2024, 6, 4, 0, 0, 0, 0, time.UTC) // 09:00 JST
)

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		golden  string
		fixture string
		state   State
	}{
		{"host-metric-critical", "mackerel-host-critical.json", State{Mention: "S0ONCALL"}},
		{"host-metric-acknowledged", "mackerel-host-critical.json", State{Mention: "S0ONCALL", AckedBy: "U024BE7LH", AckedAt: ackAt}},
		{"host-metric-silenced", "mackerel-host-critical.json", State{Mention: "S0ONCALL", SilencedBy: "U024BE7LH", SilencedUntil: silence}},
		{"host-metric-resolved", "mackerel-auto-close.json", State{Mention: "S0ONCALL"}},
		{"manual-close", "mackerel-manual-close.json", State{AckedBy: "U024BE7LH", AckedAt: ackAt}},
		{"service-metric", "mackerel-service-metric.json", State{}},
		{"connectivity", "mackerel-connectivity.json", State{Mention: "here"}},
		{"check-monitor", "mackerel-check.json", State{}},
		{"expression", "mackerel-expression.json", State{}},
		{"external", "mackerel-external.json", State{}},
		{"alert-group", "mackerel-alertgroup.json", State{}},
		{"memo-escape", "mackerel-memo-escape.json", State{}},
		{"long-roles", "mackerel-long-roles.json", State{}},
		{"mackerel-ec2", "mackerel-ec2.json", State{}},
		{"cloudwatch-alarm", "eventbridge-alarm.json", State{Mention: "S0ONCALL"}},
		{"cloudwatch-ok", "eventbridge-ok.json", State{}},
		{"cloudwatch-sns-alarm", "sns-alarm-single-metric.json", State{}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			msg := Render(parseAlert(t, tt.fixture), tt.state, Options{})
			checkGolden(t, tt.golden, msg)
		})
	}
}

func TestRenderNoticeGolden(t *testing.T) {
	for _, tt := range []struct{ golden, fixture string }{
		{"notice-host-status", "mackerel-host-status.json"},
		{"notice-host-retire", "mackerel-host-retire.json"},
		{"notice-monitor-update", "mackerel-monitor-update.json"},
		{"notice-sample", "mackerel-sample.json"},
		{"notice-unknown", "mackerel-unknown.json"},
		{"notice-sns-other", "sns-not-alarm.json"},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			ev := parseFixture(t, tt.fixture)
			if ev.Notice == nil {
				t.Fatalf("%s: not a notice", tt.fixture)
			}
			checkGolden(t, tt.golden, RenderNotice(*ev.Notice, Options{}))
		})
	}
}

func checkGolden(t *testing.T, name string, msg Message) {
	t.Helper()
	got, err := json.MarshalIndent(msg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; if the change is intended run go test ./handlers/alertui -run Golden -update and review the diff.\ngot:\n%s", path, got)
	}
}

// The golden files pin the layout; the tests below state the properties
// that must hold whatever the layout, so regenerating a golden file cannot
// hide a regression in them.

func TestRenderTitleAndStatusWord(t *testing.T) {
	a := parseAlert(t, "mackerel-host-critical.json")
	msg := Render(a, State{}, Options{})
	wantTitle := "[acme] CRITICAL: CPU % — app01"
	if Title(a) != wantTitle {
		t.Errorf("Title = %q", Title(a))
	}
	if !strings.Contains(msg.Text, "CRITICAL") || msg.Attachments[0].Fallback != wantTitle {
		t.Errorf("status word missing from text: %q / %q", msg.Text, msg.Attachments[0].Fallback)
	}
	if msg.Attachments[0].Color != ColorCritical || !strings.Contains(msg.Attachments[0].Blocks.BlockSet[0].(*slack.SectionBlock).Text.Text, "*Metric:* CPU % 96.52 &gt; 90") {
		t.Errorf("color = %q", msg.Attachments[0].Color)
	}
	svc := parseAlert(t, "mackerel-service-metric.json")
	if Title(svc) != "[acme] WARNING: Checkout p99 latency — shop" {
		t.Errorf("service title = %q", Title(svc))
	}
	expr := parseAlert(t, "mackerel-expression.json")
	if Title(expr) != "[acme] CRITICAL: web loadavg5 max" {
		t.Errorf("expression title = %q", Title(expr))
	}
}

func TestRenderEscapesUntrustedText(t *testing.T) {
	msg := Render(parseAlert(t, "mackerel-memo-escape.json"), State{}, Options{})
	out, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	// encoding/json escapes < > & as \u003c \u003e \u0026; undo that to
	// look at the text Slack receives.
	s := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(out))
	for _, bad := range []string{"<!channel>", "<@U024BE7LH>", "<https://evil.example|click me>", "app<01>", "Disk <root>", "acme <ops>", "tail <log>"} {
		if strings.Contains(s, bad) {
			t.Errorf("unescaped %q in output", bad)
		}
	}
	for _, good := range []string{"&lt;!channel&gt;", "ping everyone &amp; &lt;@U024BE7LH&gt;", "&lt;https://evil.example|click me&gt;", "> 1. ssh app01 &amp;&amp; sudo systemctl restart app\\n> 2. tail &lt;log&gt;"} {
		if !strings.Contains(s, good) {
			t.Errorf("expected %q in output", good)
		}
	}
}

func TestRenderButtons(t *testing.T) {
	// ids lists the buttons' action ids and checks that every value is the
	// alert key and nothing else.
	ids := func(t *testing.T, m Message, key string) []string {
		var out []string
		for _, b := range m.Attachments[0].Blocks.BlockSet {
			if ab, ok := b.(*slack.ActionBlock); ok {
				for _, el := range ab.Elements.ElementSet {
					btn, ok := el.(*slack.ButtonBlockElement)
					if !ok {
						t.Fatalf("unexpected element %T", el)
					}
					out = append(out, btn.ActionID)
					if btn.Value != key {
						t.Errorf("button %s value %q, want the alert key %q", btn.ActionID, btn.Value, key)
					}
				}
			}
		}
		return out
	}
	host := parseAlert(t, "mackerel-host-critical.json")
	cw := parseAlert(t, "eventbridge-alarm.json")
	sns := parseAlert(t, "sns-alarm-single-metric.json") // InstanceId "TestInstance" is not an instance id
	expr := parseAlert(t, "mackerel-expression.json")
	group := parseAlert(t, "mackerel-alertgroup.json")
	closed := parseAlert(t, "mackerel-auto-close.json")
	all := []string{ActionAck, ActionSilence1h, ActionSilence4h, ActionSilenceTomorrow, ActionClose, ActionRequestAccess}
	tests := []struct {
		name string
		a    alert.Alert
		st   State
		want []string
	}{
		{"mackerel host", host, State{}, all},
		{"acked hides ack", host, State{AckedBy: "U1"}, all[1:]},
		{"silenced hides silences", host, State{SilencedBy: "U1", SilencedUntil: silence}, []string{ActionAck, ActionClose, ActionRequestAccess}},
		{"cloudwatch: no close, access by instance", cw, State{}, []string{ActionAck, ActionSilence1h, ActionSilence4h, ActionSilenceTomorrow, ActionRequestAccess}},
		{"no instance, no access button", sns, State{}, all[:4]},
		{"expression: no host", expr, State{}, all[:5]},
		{"alert group cannot be closed through the alert API", group, State{}, all[:4]},
		{"resolved: no buttons", closed, State{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := Render(tt.a, tt.st, Options{})
			if got := ids(t, msg, tt.a.Key); !slices.Equal(got, tt.want) {
				t.Errorf("buttons = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRenderMentionOnlyWhileFiring(t *testing.T) {
	host := parseAlert(t, "mackerel-host-critical.json")
	tests := []struct {
		name string
		a    alert.Alert
		st   State
		want bool
	}{
		{"firing", host, State{Mention: "S0ONCALL"}, true},
		{"acked still shows who was paged", host, State{Mention: "S0ONCALL", AckedBy: "U1"}, true},
		{"silenced", host, State{Mention: "S0ONCALL", SilencedBy: "U1", SilencedUntil: silence}, false},
		{"resolved", parseAlert(t, "mackerel-auto-close.json"), State{Mention: "S0ONCALL"}, false},
		{"bogus mention id", host, State{Mention: "S0<!channel>"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.HasPrefix(Render(tt.a, tt.st, Options{}).Text, "<!subteam^S0ONCALL>")
			if got != tt.want {
				t.Errorf("mention shown = %v, want %v", got, tt.want)
			}
			if strings.Contains(Render(tt.a, tt.st, Options{}).Text, "<!channel>") {
				t.Error("injected mention")
			}
		})
	}
}

func TestRenderResolved(t *testing.T) {
	msg := Render(parseAlert(t, "mackerel-auto-close.json"), State{}, Options{})
	if !strings.Contains(msg.Text, "OK: CPU % — app01") || !strings.HasSuffix(msg.Text, "— resolved after 12m") {
		t.Errorf("text = %q", msg.Text)
	}
	if msg.Attachments[0].Color != ColorResolved {
		t.Errorf("color = %q", msg.Attachments[0].Color)
	}
	sec := msg.Attachments[0].Blocks.BlockSet[0].(*slack.SectionBlock).Text.Text
	if !strings.Contains(sec, "*OK* from 06/03 14:00 to 14:12 JST (12m)") || !strings.Contains(sec, "*Metric:* CPU % 41.2\n") && !strings.HasSuffix(sec, "*Metric:* CPU % 41.2") {
		t.Errorf("section = %q", sec)
	}
}

func TestRenderRoles(t *testing.T) {
	msg := Render(parseAlert(t, "mackerel-long-roles.json"), State{}, Options{})
	sec := msg.Attachments[0].Blocks.BlockSet[0].(*slack.SectionBlock).Text.Text
	if n := strings.Count(sec, "*Role:* <"); n != 5 {
		t.Errorf("%d role lines, want 5:\n%s", n, sec)
	}
	if !strings.Contains(sec, "*Role:* +3 more") {
		t.Errorf("no +3 more:\n%s", sec)
	}
	msg = Render(parseAlert(t, "mackerel-long-roles.json"), State{}, Options{MaxRoles: 8})
	sec = msg.Attachments[0].Blocks.BlockSet[0].(*slack.SectionBlock).Text.Text
	if strings.Contains(sec, "more") {
		t.Errorf("MaxRoles 8 still truncates:\n%s", sec)
	}
}

func TestRenderTimeZone(t *testing.T) {
	a := parseAlert(t, "mackerel-host-critical.json")
	tests := []struct {
		loc  *time.Location
		want string
	}{
		{nil, "*CRITICAL* from 06/03 14:00 JST"},
		{time.UTC, "*CRITICAL* from 06/03 05:00 UTC"},
		{time.FixedZone("PDT", -7*3600), "*CRITICAL* from 06/02 22:00 PDT"},
	}
	for _, tt := range tests {
		sec := Render(a, State{}, Options{Location: tt.loc}).Attachments[0].Blocks.BlockSet[0].(*slack.SectionBlock).Text.Text
		if !strings.HasPrefix(sec, tt.want) {
			t.Errorf("loc %v: %q", tt.loc, sec)
		}
	}
}

func TestMetricLine(t *testing.T) {
	v := func(f float64) *float64 { return &f }
	tests := []struct {
		name   string
		status alert.Status
		m      alert.Metric
		want   string
	}{
		{"critical uses critical threshold", alert.StatusCritical, alert.Metric{Label: "CPU %", Value: v(96.523), Operator: ">", Warning: v(70), Critical: v(90)}, "*Metric:* CPU % 96.52 &gt; 90"},
		{"warning uses warning threshold", alert.StatusWarning, alert.Metric{Label: "CPU %", Value: v(75), Operator: ">", Warning: v(70), Critical: v(90)}, "*Metric:* CPU % 75 &gt; 70"},
		{"warning without warning threshold", alert.StatusWarning, alert.Metric{Label: "x", Value: v(1), Operator: "<", Critical: v(2)}, "*Metric:* x 1 &lt; 2"},
		{"ok has no threshold", alert.StatusOK, alert.Metric{Label: "CPU %", Value: v(41.2), Operator: ">", Critical: v(90)}, "*Metric:* CPU % 41.2"},
		{"no value no line", alert.StatusOK, alert.Metric{Label: "CPU %", Operator: ">", Critical: v(90)}, ""},
		{"no operator no threshold", alert.StatusCritical, alert.Metric{Label: "l", Value: v(1.5), Critical: v(1)}, "*Metric:* l 1.5"},
		{"escaped label", alert.StatusCritical, alert.Metric{Label: "a<b>&", Value: v(1)}, "*Metric:* a&lt;b&gt;&amp; 1"},
	}
	for _, tt := range tests {
		if got := metricLine(alert.Alert{Status: tt.status, Metric: tt.m}); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestNumber(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {90, "90"}, {-3, "-3"}, {2.255356387321597, "2.26"}, {1.9588528112516932, "1.96"},
		{1.5, "1.5"}, {1.999, "2"}, {0.00123456, "0.00123"}, {1234567.891, "1234567.89"}, {1e20, "1e+20"},
	}
	for _, tt := range tests {
		if got := Number(tt.in); got != tt.want {
			t.Errorf("Number(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"}, {45 * time.Second, "45s"}, {12 * time.Minute, "12m"}, {12*time.Minute + 59*time.Second, "12m"},
		{time.Hour, "1h"}, {65 * time.Minute, "1h 5m"}, {24 * time.Hour, "1d"}, {51 * time.Hour, "2d 3h"},
	}
	for _, tt := range tests {
		if got := Duration(tt.in); got != tt.want {
			t.Errorf("Duration(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStatusLine(t *testing.T) {
	tests := []struct {
		fixture, want string
	}{
		{"mackerel-host-critical.json", "14:00 JST *CRITICAL* · CPU % 96.52 &gt; 90"},
		{"mackerel-auto-close.json", "14:12 JST *OK* — resolved after 12m · CPU % 41.2"},
		{"mackerel-check.json", "14:00 JST *CRITICAL* · PROCS CRITICAL: 0 processes with command name 'nginx' (&lt;1)"},
	}
	for _, tt := range tests {
		if got := StatusLine(parseAlert(t, tt.fixture), Options{}); got != tt.want {
			t.Errorf("%s: %q\nwant %q", tt.fixture, got, tt.want)
		}
	}
}

func TestRenderLongMemoFitsSlack(t *testing.T) {
	a := parseAlert(t, "mackerel-host-critical.json")
	a.Memo = strings.Repeat("<&>", 5000)
	a.Message = strings.Repeat("x", 5000)
	for _, b := range Render(a, State{}, Options{}).Attachments[0].Blocks.BlockSet {
		if s, ok := b.(*slack.SectionBlock); ok && len([]rune(s.Text.Text)) > maxSectionText {
			t.Errorf("section of %d characters exceeds Slack's limit", len([]rune(s.Text.Text)))
		}
	}
}
