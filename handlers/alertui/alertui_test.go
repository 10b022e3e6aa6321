package alertui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/handlers/lambdaevent"
	"github.com/tokken/tokken/infra/config"
)

func TestWebhookRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	good := fixture(t, "mackerel-host-critical.json")
	tests := []struct {
		name       string
		body       []byte
		user, pass string
		method     string
		status     int
		reason     string
	}{
		{"no credentials", good, "", "", "", http.StatusUnauthorized, "missing Basic auth"},
		{"wrong user", good, "mackerel2", hookPass, "", http.StatusUnauthorized, "wrong webhook credentials"},
		{"wrong password", good, hookUser, hookPass + "x", "", http.StatusUnauthorized, "wrong webhook credentials"},
		{"empty password", good, hookUser, "", "", http.StatusUnauthorized, "wrong webhook credentials"},
		{"GET", nil, hookUser, hookPass, http.MethodGet, http.StatusMethodNotAllowed, ""},
		{"not JSON", []byte("event=alert"), hookUser, hookPass, "", http.StatusBadRequest, "expected a JSON object"},
		{"broken JSON", []byte(`{"event":"alert",`), hookUser, hookPass, "", http.StatusBadRequest, "invalid JSON"},
		{"alert without id", []byte(`{"event":"alert","alert":{"status":"critical"}}`), hookUser, hookPass, "", http.StatusBadRequest, "bad payload"},
		{"too large", append([]byte(`{"event":"sample","x":"`), bytes.Repeat([]byte("a"), MaxBody)...), hookUser, hookPass, "", http.StatusRequestEntityTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st int
			var body string
			if tt.method != "" {
				req, _ := http.NewRequest(tt.method, e.srv.URL+"/webhooks/mackerel", nil)
				req.SetBasicAuth(tt.user, tt.pass)
				st, body = e.do(req)
			} else {
				st, body = e.webhook(tt.body, tt.user, tt.pass)
			}
			if st != tt.status || !strings.Contains(body, tt.reason) {
				t.Errorf("got %d %q, want %d containing %q", st, body, tt.status, tt.reason)
			}
		})
	}
	e.idle()
	if recs, err := e.store.List(context.Background(), alert.KindDelivery, bot.KeyRange{}, 0); err != nil || len(recs) != 0 {
		t.Errorf("refused requests stored %d deliveries (%v)", len(recs), err)
	}
}

func TestEveryMackerelPayload(t *testing.T) {
	e := newEnv(t, envOptions{})
	names, err := filepath.Glob(filepath.Join("testdata", "mackerel-*.json"))
	if err != nil || len(names) < 20 {
		t.Fatalf("fixtures: %d, %v", len(names), err)
	}
	keys := map[string]bool{}
	for _, n := range names {
		body, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		st, answer := e.webhook(body, hookUser, hookPass)
		if st != http.StatusAccepted {
			t.Fatalf("%s: %d %s", filepath.Base(n), st, answer)
		}
		var a struct{ Key string }
		if err := json.Unmarshal([]byte(answer), &a); err != nil || a.Key == "" {
			t.Fatalf("%s: answer %q", filepath.Base(n), answer)
		}
		keys[a.Key] = true
	}
	e.idle()
	ctx := context.Background()
	deliveries, err := e.store.List(ctx, alert.KindDelivery, bot.KeyRange{}, 0)
	if err != nil || len(deliveries) != len(names) {
		t.Fatalf("stored %d deliveries of %d (%v)", len(deliveries), len(names), err)
	}
	now := time.Now()
	for key := range keys {
		if rec, err := e.svc.Get(ctx, key); err == nil {
			if why := rec.Suppressed(now); why != "" {
				t.Errorf("%s not posted: %s", key, why)
				continue
			}
			m, ok := e.fake.Message(rec.Channel, rec.TS)
			if !ok || !strings.Contains(m.Text, rec.Alert.Status.Word()) {
				t.Errorf("%s: message %+v", key, m)
			}
			if rec.Shown != rec.Rev || len(rec.Pending) > 0 || rec.LeaseOwner != "" {
				t.Errorf("%s not settled: shown %d rev %d pending %d", key, rec.Shown, rec.Rev, len(rec.Pending))
			}
			continue
		}
		var n alert.NoticeRecord
		raw, err := e.store.Get(ctx, alert.KindNotice, key)
		if err != nil || json.Unmarshal(raw.Data, &n) != nil || !n.Placed || n.TS == "" {
			t.Errorf("%s: neither a posted alert nor a posted notice (%v)", key, err)
		}
	}
	// The unknown event type is shown plainly, not dropped.
	found := false
	for _, m := range e.fake.Messages(chAlerts) {
		if strings.Contains(m.Shown(), "does not know this event type") {
			found = true
		}
	}
	if !found {
		t.Error("unknown Mackerel event not shown")
	}
}

func TestCloseUpdatesInPlace(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.send(fixture(t, "mackerel-host-critical.json"))
	const key = "mackerel:4Fbh2K6yWfe"
	_, m := e.message(key)
	if !slices.Contains(buttons(m), ActionAck) || !strings.Contains(m.Text, "CRITICAL") {
		t.Fatalf("open alert: %q buttons %v", m.Text, buttons(m))
	}
	e.send(fixture(t, "mackerel-auto-close.json"))
	rec, m := e.message(key)
	if got := len(e.topLevel(rec.Channel)); got != 1 {
		t.Fatalf("close posted a new message: %d top-level", got)
	}
	text := m.Shown()
	if m.Edits != 1 || len(buttons(m)) != 0 || !strings.Contains(text, ColorResolved) ||
		!strings.Contains(text, "resolved after") || !strings.Contains(m.Text, "OK") {
		t.Errorf("closed message: edits %d buttons %v\n%s", m.Edits, buttons(m), text)
	}
	thread := e.fake.Thread(rec.Channel, rec.TS)
	if len(thread) != 1 || !strings.Contains(thread[0].Text, "OK") {
		t.Errorf("thread after close: %+v", thread)
	}
	if rec.Alert.OpenedAt.IsZero() || rec.Alert.Duration() <= 0 {
		t.Errorf("stored OpenedAt lost: %+v", rec.Alert)
	}
}

func TestResendDedup(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := fixture(t, "mackerel-host-critical.json")
	e.send(body)
	e.send(body) // Mackerel re-notifies the same alert: identical, within the interval
	rec, m := e.message("mackerel:4Fbh2K6yWfe")
	if n := len(e.topLevel(rec.Channel)); n != 1 || m.Edits != 0 || len(e.fake.Thread(rec.Channel, rec.TS)) != 0 {
		t.Errorf("identical re-send shown: %d top-level, %d edits, thread %d", n, m.Edits, len(e.fake.Thread(rec.Channel, rec.TS)))
	}
	if rec.Deliveries != 2 {
		t.Errorf("re-send not stored: %d deliveries", rec.Deliveries)
	}
	// A re-send with a new value goes to the thread only.
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	doc["alert"].(map[string]any)["metricValue"] = 99.5
	doc["message"] = "CPU % 99.5 > 90"
	changed, _ := json.Marshal(doc)
	e.send(changed)
	rec, m = e.message("mackerel:4Fbh2K6yWfe")
	thread := e.fake.Thread(rec.Channel, rec.TS)
	if len(e.topLevel(rec.Channel)) != 1 || m.Edits != 0 || len(thread) != 1 || !strings.Contains(thread[0].Text, "99.5") {
		t.Errorf("changed re-send: edits %d thread %+v", m.Edits, thread)
	}
}

// withRoles rewrites a host alert fixture's roles (and id).
func withRoles(t *testing.T, name, id, service string) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(fixture(t, name), &doc); err != nil {
		t.Fatal(err)
	}
	doc["alert"].(map[string]any)["id"] = id
	host := doc["host"].(map[string]any)
	host["roles"] = []any{map[string]any{"fullname": service + ": web", "serviceName": service, "roleName": "web"}}
	b, _ := json.Marshal(doc)
	return b
}

func TestRouting(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.send(withRoles(t, "mackerel-host-critical.json", "stg1", "shop-stg"))
	e.send(withRoles(t, "mackerel-host-critical.json", "prd1", "shop-prod"))
	e.send(withRoles(t, "mackerel-host-critical.json", "oth1", "shop"))
	tests := []struct {
		key, channel string
		mention      bool
	}{
		{"mackerel:stg1", chStaging, false}, // a later critical rule would page; staging's own rule does not
		{"mackerel:prd1", chProd, true},
		{"mackerel:oth1", chAlerts, true},
	}
	for _, tt := range tests {
		rec, m := e.message(tt.key)
		if rec.Channel != tt.channel || strings.Contains(m.Text, "subteam^"+oncall) != tt.mention {
			t.Errorf("%s: channel %s text %q", tt.key, rec.Channel, m.Text)
		}
	}
}

func TestCloudWatchThroughLambdaEvents(t *testing.T) {
	e := newEnv(t, envOptions{})
	d, err := lambdaevent.New(lambdaevent.Deps{Role: config.RoleWorker, Jobs: func(context.Context, bot.Job) error { return nil },
		DecodeJob: func(string) (bot.Job, error) { return bot.Job{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	d.HandleSNS(SNS(e.svc, discardLog()))
	d.HandleEventBridge("aws.cloudwatch", DetailTypeAlarmStateChange, EventBridge(e.svc, discardLog()))
	ctx := context.Background()
	// aws-lambda-go's samples share one message id; real ones are unique.
	for i, name := range []string{"sns-alarm-single-metric.json", "sns-alarm-multiple-metrics.json", "sns-not-alarm.json", "eventbridge-alarm.json"} {
		ev := withEventID(t, name, fmt.Sprintf("id-%d", i))
		if _, err := d.Invoke(ctx, ev); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// A Lambda retry of the same event stores nothing new.
		if _, err := d.Invoke(ctx, ev); err != nil {
			t.Fatalf("%s again: %v", name, err)
		}
	}
	e.idle()
	deliveries, _ := e.store.List(ctx, alert.KindDelivery, bot.KeyRange{}, 0)
	if len(deliveries) != 4 {
		t.Errorf("stored %d deliveries, want 4 (retries collapse)", len(deliveries))
	}
	var alarms, others int
	for _, ch := range []string{chAlerts, chProd, chStaging} {
		for _, m := range e.topLevel(ch) {
			text := m.Shown()
			switch {
			case strings.Contains(text, "CloudWatch") && strings.Contains(m.Text, "CRITICAL"):
				alarms++
			case strings.Contains(text, "SNS message"):
				others++
			}
		}
	}
	// The two SNS samples are one alarm (same ARN): one message, the second
	// delivery a re-send.
	if alarms != 2 || others != 1 {
		t.Errorf("shown %d alarms and %d other SNS messages, want 2 and 1\n%s", alarms, others, e.fake.Dump(10))
	}
	// The alarm's OK state (EventBridge) closes the message it opened.
	if _, err := d.Invoke(ctx, withEventID(t, "eventbridge-ok.json", "id-ok")); err != nil {
		t.Fatal(err)
	}
	e.idle()
	var ev struct{ Resources []string }
	_ = json.Unmarshal(fixture(t, "eventbridge-ok.json"), &ev)
	rec, m := e.message("cloudwatch:" + ev.Resources[0])
	if rec.Alert.Open || m.Edits == 0 || !strings.Contains(m.Text, "OK") {
		t.Errorf("alarm OK did not update in place: open=%v edits=%d %q", rec.Alert.Open, m.Edits, m.Text)
	}
	// The message shows the state reason: the OK's, in place of the ALARM's.
	if text := m.Shown(); !strings.Contains(text, "*Reason:* Threshold Crossed: 1 out of the last 1 datapoints [12.5 (03/06/24 05:10:00)] was not greater than or equal") {
		t.Errorf("EventBridge alarm message lacks its state reason:\n%s", text)
	}

	// An SNS alarm's NewStateReason is shown too, escaped: an alarm's
	// reason is text anyone who can set the alarm controls.
	var doc map[string]any
	_ = json.Unmarshal(fixture(t, "sns-alarm-single-metric.json"), &doc)
	sns := doc["Records"].([]any)[0].(map[string]any)["Sns"].(map[string]any)
	var alarm map[string]any
	_ = json.Unmarshal([]byte(sns["Message"].(string)), &alarm)
	alarm["AlarmArn"] = "arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:reason-test"
	alarm["AlarmName"] = "reason-test"
	alarm["NewStateReason"] = "Threshold Crossed: 1 datapoint <!channel> & <https://evil.example|click here>"
	b, _ := json.Marshal(alarm)
	sns["Message"], sns["MessageId"] = string(b), "id-reason"
	b, _ = json.Marshal(doc)
	if _, err := d.Invoke(ctx, b); err != nil {
		t.Fatal(err)
	}
	e.idle()
	_, m = e.message("cloudwatch:arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:reason-test")
	text := m.Shown()
	if !strings.Contains(text, "*Reason:* Threshold Crossed: 1 datapoint &lt;!channel&gt; &amp; &lt;https://evil.example|click here&gt;") ||
		strings.Contains(text, "<!channel>") || strings.Contains(text, "<https://evil") {
		t.Errorf("SNS alarm reason missing or not escaped:\n%s", text)
	}
}

func TestButtons(t *testing.T) {
	const key = "mackerel:4Fbh2K6yWfe"
	tests := []struct {
		action    string
		user      string
		wantEph   string // in the clicker's ephemeral ("" for none)
		wantText  string // in the message afterwards
		wantEdits int
	}{
		{ActionAck, refused, "may not act", "", 0},
		{ActionAck, allowed, "", "Acknowledged", 1},
		{ActionSilence1h, refused, "may not act", "", 0},
		{ActionSilence1h, allowed, "Silenced host:app01 monitor:CPU %", "Silenced", 1},
		{ActionSilence4h, allowed, "Silenced", "Silenced", 1},
		{ActionSilenceTomorrow, allowed, "09:00", "09:00", 1},
		{ActionClose, refused, "may not act", "", 0},
		{ActionClose, allowed, "Mackerel closed the alert", "", 0},
		// Request access is checked against the alert rules like every
		// button; the refusal says /access itself is still there.
		{ActionRequestAccess, refused, "Request access on an alert is for those who may act on it; `/access` stays open", "", 0},
		{ActionRequestAccess, allowed, "/access &lt;profile&gt; 1h app01 investigating alert", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.action+"/"+tt.user, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			e.mk.AddAlert("4Fbh2K6yWfe")
			e.send(fixture(t, "mackerel-host-critical.json"))
			if st := e.click(tt.user, tt.action, key); st != http.StatusOK {
				t.Fatalf("click answered %d", st)
			}
			rec, m := e.message(key)
			eph := e.lastEphemeral(tt.user)
			if tt.wantEph == "" && eph != "" || !strings.Contains(eph, tt.wantEph) {
				t.Errorf("ephemeral %q, want %q", eph, tt.wantEph)
			}
			if m.Edits != tt.wantEdits || !strings.Contains(m.Shown(), tt.wantText) {
				t.Errorf("message after click: edits %d\n%s", m.Edits, m.Shown())
			}
			_, closed := e.mk.Closed("4Fbh2K6yWfe")
			if closed != (tt.action == ActionClose && tt.user == allowed) {
				t.Errorf("closed in Mackerel = %v", closed)
			}
			if tt.user == refused && (rec.AckedBy != "" || rec.SilenceID != "" || len(e.fake.Thread(rec.Channel, rec.TS)) != 0) {
				t.Errorf("refused click changed the alert: %+v", rec)
			}
		})
	}
}

type recOpener struct {
	mu   sync.Mutex
	got  []AccessPrefill
	trig []string
}

func (o *recOpener) Open(_ context.Context, triggerID, _ string, p AccessPrefill) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got, o.trig = append(o.got, p), append(o.trig, triggerID)
	return nil
}

func TestRequestAccessOpensModal(t *testing.T) {
	op := &recOpener{}
	e := newEnv(t, envOptions{access: op})
	e.send(fixture(t, "mackerel-ec2.json"))
	// Someone the alert rules do not let act on it gets no form.
	e.click(refused, ActionRequestAccess, "mackerel:4FbhEc2")
	if eph := e.lastEphemeral(refused); len(op.got) != 0 || !strings.Contains(eph, "may not act") {
		t.Fatalf("refused click: modal opened %d times, ephemeral %q", len(op.got), eph)
	}
	e.click(allowed, ActionRequestAccess, "mackerel:4FbhEc2")
	if len(op.got) != 1 || op.trig[0] == "" || !strings.HasPrefix(op.got[0].Reason, "investigating alert: ") ||
		(op.got[0].InstanceID == "" && op.got[0].HostName == "") {
		t.Fatalf("access modal prefill: %+v", op.got)
	}
	if eph := e.lastEphemeral(allowed); eph != "" {
		t.Errorf("ephemeral shown although the modal opened: %q", eph)
	}
}

func TestCloseWithoutAPIKeyAndDoubleAck(t *testing.T) {
	e := newEnv(t, envOptions{noMK: true})
	e.send(fixture(t, "mackerel-host-critical.json"))
	e.click(allowed, ActionClose, "mackerel:4Fbh2K6yWfe")
	if eph := e.lastEphemeral(allowed); !strings.Contains(eph, "MACKEREL_API_KEY") {
		t.Errorf("close without key: %q", eph)
	}
	e.click(allowed, ActionAck, "mackerel:4Fbh2K6yWfe")
	e.click(allowed, ActionAck, "mackerel:4Fbh2K6yWfe")
	if eph := e.lastEphemeral(allowed); !strings.Contains(eph, "already acknowledged") {
		t.Errorf("second ack: %q", eph)
	}
	if _, m := e.message("mackerel:4Fbh2K6yWfe"); m.Edits != 1 {
		t.Errorf("double ack edited %d times", m.Edits)
	}
}

func TestCommands(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.mk.AddMonitor("3Ju", "Checkout p99 latency")
	e.send(fixture(t, "mackerel-host-critical.json"))
	tests := []struct {
		user, text string
		typ        string
		want       []string
	}{
		{allowed, "", "ephemeral", []string{"/alerts list"}},
		{allowed, "lsit", "ephemeral", []string{"Unknown subcommand `lsit`", "Did you mean `list`?"}},
		{allowed, "list", "ephemeral", []string{"Open alerts* (1)", "CRITICAL: CPU %", "No active silences"}},
		{allowed, "silence app01 1h", "ephemeral", []string{"Say what to silence"}},
		{allowed, "silence hots:app01 1h", "ephemeral", []string{"Unknown scope `hots`", "Did you mean `host`?"}},
		{allowed, "silence host:app01", "ephemeral", []string{"How long?"}},
		{allowed, "silence host:app01 2x", "ephemeral", []string{"`2x` is not a duration"}},
		{allowed, "silence host:app01 9d", "ephemeral", []string{"`9d` is not a duration"}},
		{allowed, `silence monitor:"CPU % 1h`, "ephemeral", []string{"quote is not closed"}},
		{allowed, "unsilence s-nope", "ephemeral", []string{"No silence `s-nope`"}},
		{refused, "silence host:db* 1h", "ephemeral", []string{"may not act"}},
		{allowed, "silence host:db* 2h deploying <!channel>", "in_channel", []string{"silenced host:db*", "deploying &lt;!channel&gt;", "only tokken is silenced"}},
		{allowed, `silence monitor:"Checkout p99 latency" 30m`, "in_channel", []string{"Mackerel downtime dt0001 created too"}},
		{allowed, "silence role:shop:web tomorrow", "in_channel", []string{"until", "09:00", "Mackerel downtime dt0002"}},
	}
	for _, tt := range tests {
		typ, text := e.command(tt.user, tt.text)
		if typ != tt.typ {
			t.Errorf("/alerts %s: response type %q", tt.text, typ)
		}
		for _, w := range tt.want {
			if !strings.Contains(text, w) {
				t.Errorf("/alerts %s: %q lacks %q", tt.text, text, w)
			}
		}
	}
	if dts := e.mk.Downtimes(); len(dts) != 2 || dts[1].RoleScopes[0] != "shop: web" || dts[0].MonitorScopes[0] != "3Ju" {
		t.Errorf("downtimes: %+v", dts)
	}
	// The list shows the silences; unsilence ends one (allowed users only).
	_, text := e.command(allowed, "list")
	sils, _ := e.svc.ActiveSilences(context.Background())
	if len(sils) != 3 || !strings.Contains(text, "Active silences* (3)") {
		t.Fatalf("silences: %d\n%s", len(sils), text)
	}
	var id string
	for _, s := range sils {
		if s.Scope.Role != "" {
			id = s.ID
		}
	}
	if _, text := e.command(refused, "unsilence "+id); !strings.Contains(text, "may not act") {
		t.Errorf("refused unsilence: %q", text)
	}
	if e.mk.DowntimeDeleted("dt0002") {
		t.Fatal("refused unsilence deleted the Mackerel downtime")
	}
	// Ending the silence ends the Mackerel downtime it created.
	if typ, text := e.command(allowed, "unsilence "+id); typ != "in_channel" || !strings.Contains(text, "ended silence `"+id+"`") ||
		!strings.Contains(text, "Mackerel downtime dt0002 deleted too") {
		t.Errorf("unsilence: %s %q", typ, text)
	}
	if !e.mk.DowntimeDeleted("dt0002") || e.mk.DowntimeDeleted("dt0001") {
		t.Errorf("after unsilence: downtime dt0002 deleted %v, dt0001 deleted %v; want only dt0002",
			e.mk.DowntimeDeleted("dt0002"), e.mk.DowntimeDeleted("dt0001"))
	}
	if sils, _ := e.svc.ActiveSilences(context.Background()); len(sils) != 2 {
		t.Errorf("after unsilence: %d active", len(sils))
	}
	// When Mackerel refuses, the user is told the downtime still runs.
	for _, s := range sils {
		if s.Scope.Monitor != "" {
			id = s.ID
		}
	}
	e.mk.FailNext(http.StatusServiceUnavailable)
	if _, text := e.command(allowed, "unsilence "+id); !strings.Contains(text, "Mackerel did not delete downtime dt0001") ||
		!strings.Contains(text, "delete it in Mackerel") {
		t.Errorf("unsilence with Mackerel down: %q", text)
	}
	// A silenced host's new alert is stored, not posted.
	var doc map[string]any
	_ = json.Unmarshal(fixture(t, "mackerel-connectivity.json"), &doc) // host db01
	b, _ := json.Marshal(doc)
	before := len(e.topLevel(chAlerts))
	e.send(b)
	if after := len(e.topLevel(chAlerts)); after != before {
		t.Errorf("silenced alert posted")
	}
	if rec, err := e.svc.Get(context.Background(), "mackerel:4FbhConn"); err != nil || !strings.HasPrefix(rec.Suppressed(time.Now()), "silenced") {
		t.Errorf("silenced alert: %v %+v", err, rec)
	}
}

// withEventID gives a Lambda SNS or EventBridge fixture its own message id.
func withEventID(t *testing.T, name, id string) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(fixture(t, name), &doc); err != nil {
		t.Fatal(err)
	}
	if recs, ok := doc["Records"].([]any); ok {
		for i, r := range recs {
			r.(map[string]any)["Sns"].(map[string]any)["MessageId"] = fmt.Sprintf("%s-%d", id, i)
		}
	} else {
		doc["id"] = id
	}
	b, _ := json.Marshal(doc)
	return b
}

func TestFlappingCollapses(t *testing.T) {
	e := newEnv(t, envOptions{})
	var open, closed map[string]any
	_ = json.Unmarshal(fixture(t, "mackerel-host-critical.json"), &open)
	_ = json.Unmarshal(fixture(t, "mackerel-auto-close.json"), &closed)
	at := int64(1717390800)
	for i := range 4 { // a new Mackerel alert id each time, minutes apart
		id := fmt.Sprintf("flap%d", i)
		open["alert"].(map[string]any)["id"] = id
		open["alert"].(map[string]any)["openedAt"] = at
		b, _ := json.Marshal(open)
		e.send(b)
		closed["alert"].(map[string]any)["id"] = id
		closed["alert"].(map[string]any)["openedAt"] = at
		closed["alert"].(map[string]any)["closedAt"] = at + 120
		b, _ = json.Marshal(closed)
		e.send(b)
		at += 300
	}
	top := e.topLevel(chAlerts)
	if len(top) != 1 {
		t.Fatalf("flapping alert posted %d top-level messages", len(top))
	}
	if text := top[0].Shown(); !strings.Contains(text, "Flapping:* opened 4 times") {
		t.Errorf("no flap counter:\n%s", text)
	}
}
