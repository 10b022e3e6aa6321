package alertui

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot/alert"
)

func f64(v float64) *float64 { return &v }

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	opened = time.Unix(1717390800, 0).UTC()
	closed = time.Unix(1717391520, 0).UTC()
)

const org = "https://mackerel.io/orgs/acme"

func acmeHost(name, id, status string, roles ...alert.Role) *alert.Host {
	return &alert.Host{ID: id, Name: name, URL: org + "/hosts/" + id, Status: status, Roles: roles}
}

func role(svc, r string) alert.Role {
	return alert.Role{Service: svc, Role: r, ServiceURL: org + "/services/" + svc, RoleURL: org + "/services/" + svc + "#role=" + r}
}

func TestParseMackerelAlerts(t *testing.T) {
	web, batch := role("shop", "web"), role("shop", "batch")
	tests := []struct {
		file string
		want alert.Alert
	}{
		{"mackerel-host-critical.json", alert.Alert{
			Source: alert.SourceMackerel, Key: "mackerel:4Fbh2K6yWfe", ID: "4Fbh2K6yWfe", Kind: alert.KindAlert, Org: "acme",
			Status: alert.StatusCritical, Open: true, Monitor: "CPU %", MonitorType: "host",
			Host:    acmeHost("app01", "3yAbCdEfGhI", "working", web, batch),
			Metric:  alert.Metric{Label: "CPU %", Value: f64(96.523442), Operator: ">", Warning: f64(70), Critical: f64(90)},
			Message: "CPU % 96.52 > 90", Memo: "Check top on the host; if a batch runs, wait.", Trigger: "monitoring",
			ImageURL: "https://mackerel.io/embed/public/alert/4Fbh2K6yWfe.png", URL: org + "/alerts/4Fbh2K6yWfe",
			OpenedAt: opened, StatusChangedAt: opened,
		}},
		{"mackerel-doc-example.json", alert.Alert{
			Source: alert.SourceMackerel, Key: "mackerel:2bj...", ID: "2bj...", Kind: alert.KindAlert, Org: "Macker...",
			Status: alert.StatusCritical, Open: true, Monitor: "MonitorName", MonitorType: "host",
			Host: &alert.Host{ID: "22D4...", Name: "app01", URL: "https://mackerel.io/orgs/.../hosts/...", Status: "working",
				Roles: []alert.Role{{Service: "Service", Role: "Role", ServiceURL: "https://mackerel.io/orgs/.../services/...", RoleURL: "https://mackerel.io/orgs/.../services/..."}}},
			Metric: alert.Metric{Label: "MetricName", Value: f64(2.255356387321597), Operator: ">",
				Warning: f64(1.4665636369580741), Critical: f64(1.9588528112516932)},
			Message: "MetricName 2.26 > 1.96", Memo: "memo....", Trigger: "monitor",
			ImageURL: "https://mackerel.io/embed/public/.../....png", URL: "https://mackerel.io/orgs/.../alerts/2bj...",
			// isOpen wins over the closedAt the example also carries.
			OpenedAt: time.Unix(1473129912, 0).UTC(), StatusChangedAt: time.Unix(1473130092, 0).UTC(),
		}},
		{"mackerel-manual-close.json", alert.Alert{
			Source: alert.SourceMackerel, Key: "mackerel:4Fbh2K6yWfe", ID: "4Fbh2K6yWfe", Kind: alert.KindAlert, Org: "acme",
			Status: alert.StatusOK, Open: false, Monitor: "CPU %", MonitorType: "host",
			Host:   acmeHost("app01", "3yAbCdEfGhI", "working", web, batch),
			Metric: alert.Metric{Label: "CPU %", Operator: ">", Warning: f64(70), Critical: f64(90)}, // no metricValue
			Memo:   "Check top on the host; if a batch runs, wait.", Trigger: "manual close", User: "alice",
			URL: org + "/alerts/4Fbh2K6yWfe", OpenedAt: opened, ClosedAt: closed, StatusChangedAt: closed,
		}},
		{"mackerel-service-metric.json", alert.Alert{
			Source: alert.SourceMackerel, Key: "mackerel:4Fbh3Svc", ID: "4Fbh3Svc", Kind: alert.KindAlert, Org: "acme",
			Status: alert.StatusWarning, Open: true, Monitor: "Checkout p99 latency", MonitorType: "service", Service: "shop",
			Metric:  alert.Metric{Label: "checkout.latency_p99", Value: f64(1.2523), Operator: ">", Warning: f64(1), Critical: f64(2.5)},
			Message: "checkout.latency_p99 1.25 > 1", Trigger: "monitoring",
			ImageURL: "https://mackerel.io/embed/public/alert/4Fbh3Svc.png", URL: org + "/alerts/4Fbh3Svc",
			OpenedAt: opened, StatusChangedAt: opened,
		}},
		{"mackerel-alertgroup.json", alert.Alert{
			Source: alert.SourceMackerel, Key: "mackerel-group:6gGrp", ID: "6gGrp", Kind: alert.KindAlertGroup, Org: "acme",
			Status: alert.StatusCritical, Open: true, Monitor: "Shop degraded", MonitorType: "alertGroup",
			Memo: "Shop is degraded: follow the shop runbook.", URL: org + "/alert-groups/6gGrp",
			OpenedAt: opened, StatusChangedAt: opened.Add(time.Minute),
		}},
		{"mackerel-ec2.json", alert.Alert{
			Source: alert.SourceMackerel, Key: "mackerel:4FbhEc2", ID: "4FbhEc2", Kind: alert.KindAlert, Org: "acme",
			Status: alert.StatusCritical, Open: true, Monitor: "connectivity", MonitorType: "connectivity",
			Host: &alert.Host{ID: "3yEc2", Name: "ip-10-0-1-23.ap-northeast-1.compute.internal", URL: org + "/hosts/3yEc2",
				Status: "working", Roles: []alert.Role{web}, InstanceID: "i-0123456789abcdef0"},
			Trigger: "monitoring", URL: org + "/alerts/4FbhEc2", OpenedAt: opened, StatusChangedAt: opened,
			Account: "123456789012", Region: "ap-northeast-1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body := readFixture(t, tt.file)
			ev, err := ParseMackerel(body)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != tt.want.Kind || ev.Alert == nil || ev.Notice != nil {
				t.Fatalf("event = %+v", ev)
			}
			got := *ev.Alert
			if len(got.Raw) == 0 {
				t.Error("raw payload not kept")
			}
			got.Raw = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("alert mismatch\n got %s\nwant %s", dump(got), dump(tt.want))
			}
			if ev.Key() != tt.want.Key {
				t.Errorf("Key() = %q", ev.Key())
			}
		})
	}
}

// dump shows an alert as indented JSON for failure messages.
func dump(a alert.Alert) string {
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func TestParseMackerelStatusQuirks(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus alert.Status
		wantOpen   bool
		wantClosed bool
		wantValue  *float64
		wantUser   string
	}{
		{"uppercase alert status", `{"event":"alert","alert":{"id":"a","status":"WARNING","isOpen":true}}`, alert.StatusWarning, true, false, nil, ""},
		{"missing isOpen, ok status closes", `{"event":"alert","alert":{"id":"a","status":"ok","closedAt":1717391520}}`, alert.StatusOK, false, true, nil, ""},
		{"missing isOpen, critical is open", `{"event":"alert","alert":{"id":"a","status":"critical","closedAt":null}}`, alert.StatusCritical, true, false, nil, ""},
		{"unrecognised status is unknown", `{"event":"alert","alert":{"id":"a","status":"degraded","isOpen":true}}`, alert.StatusUnknown, true, false, nil, ""},
		{"empty status on closed alert is ok", `{"event":"alert","alert":{"id":"a","isOpen":false}}`, alert.StatusOK, false, false, nil, ""},
		{"string numbers and isOpen", `{"event":"alert","alert":{"id":"a","status":"critical","isOpen":"true","metricValue":"2.5"}}`, alert.StatusCritical, true, false, f64(2.5), ""},
		{"integer metric value", `{"event":"alert","alert":{"id":"a","status":"critical","isOpen":true,"metricValue":3}}`, alert.StatusCritical, true, false, f64(3), ""},
		{"user as string", `{"event":"alert","user":"bob","alert":{"id":"a","status":"ok","isOpen":false}}`, alert.StatusOK, false, false, nil, "bob"},
		{"user object without screenName", `{"event":"alert","user":{"email":"e@x"},"alert":{"id":"a","status":"ok","isOpen":false}}`, alert.StatusOK, false, false, nil, "e@x"},
		{"numeric id", `{"event":"alert","alert":{"id":12345,"status":"critical","isOpen":true}}`, alert.StatusCritical, true, false, nil, ""},
		{"alertGroup lowercase still fine", `{"event":"alertGroup","alertGroup":{"id":"g","status":"ok","isOpen":false,"closedAt":1717391520000}}`, alert.StatusOK, false, true, nil, ""},
		{"alertGroup UNKNOWN", `{"event":"alertGroup","alertGroup":{"id":"g","status":"UNKNOWN"}}`, alert.StatusUnknown, true, false, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := ParseMackerel([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			a := ev.Alert
			if a == nil {
				t.Fatalf("no alert: %+v", ev)
			}
			if a.Status != tt.wantStatus || a.Open != tt.wantOpen || a.ClosedAt.IsZero() == tt.wantClosed || a.User != tt.wantUser {
				t.Errorf("got status=%q open=%v closedAt=%v user=%q", a.Status, a.Open, a.ClosedAt, a.User)
			}
			if !reflect.DeepEqual(a.Metric.Value, tt.wantValue) {
				t.Errorf("metric value = %v, want %v", a.Metric.Value, tt.wantValue)
			}
			if tt.wantClosed && !a.ClosedAt.Equal(closed) {
				t.Errorf("closedAt = %v, want %v (seconds and milliseconds both accepted)", a.ClosedAt, closed)
			}
		})
	}
}

func TestParseMackerelNotices(t *testing.T) {
	tests := []struct {
		file      string
		kind      alert.Kind
		title     string
		user      string
		org       string
		wantHost  bool
		wantMonit string
	}{
		{"mackerel-host-status.json", alert.KindHostStatus, "Host app01 status changed: working → maintenance by bob", "bob", "acme", true, ""},
		{"mackerel-host-register.json", alert.KindHostRegister, "Host app02 registered", "", "acme", true, ""},
		{"mackerel-host-retire.json", alert.KindHostRetire, "Host app01 retired by carol", "carol", "acme", true, ""},
		{"mackerel-monitor-create.json", alert.KindMonitorCreate, `Monitor "CPU %" created by alice`, "alice", "acme", false, "CPU %"},
		{"mackerel-monitor-update.json", alert.KindMonitorUpdate, `Monitor "CPU %" updated by alice`, "alice", "acme", false, "CPU %"},
		{"mackerel-monitor-delete.json", alert.KindMonitorDelete, `Monitor "CPU %" deleted by alice`, "alice", "acme", false, "CPU %"},
		{"mackerel-sample.json", alert.KindSample, "Test notification from Mackerel", "", "", false, ""},
		{"mackerel-unknown.json", alert.KindUnknown, "Mackerel event invitationAccepted", "", "acme", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body := readFixture(t, tt.file)
			ev, err := ParseMackerel(body)
			if err != nil {
				t.Fatal(err)
			}
			n := ev.Notice
			if ev.Alert != nil || n == nil || ev.Kind != tt.kind || n.Kind != tt.kind {
				t.Fatalf("event = %+v", ev)
			}
			if n.Title != tt.title || n.User != tt.user || n.Org != tt.org || (n.Host != nil) != tt.wantHost || n.Monitor != tt.wantMonit {
				t.Errorf("notice = %+v", n)
			}
			if !strings.HasPrefix(n.Key, "mackerel:"+string(tt.kind)+":") || len(n.Raw) == 0 {
				t.Errorf("key %q raw %d bytes", n.Key, len(n.Raw))
			}
			again, _ := ParseMackerel(body)
			if again.Key() != ev.Key() {
				t.Error("same body, different key: retries would not deduplicate")
			}
		})
	}
	// Two different host status changes must not share a key.
	a, _ := ParseMackerel([]byte(`{"event":"hostStatus","host":{"name":"a","status":"working"}}`))
	b, _ := ParseMackerel([]byte(`{"event":"hostStatus","host":{"name":"a","status":"standby"}}`))
	if a.Key() == b.Key() {
		t.Error("different notices share a key")
	}
}

func TestParseMackerelSampleMessage(t *testing.T) {
	ev, err := ParseMackerel(readFixture(t, "mackerel-sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Notice.Message != "This is a sample notification from Mackerel." || ev.Notice.Org != "" {
		t.Errorf("sample = %+v", ev.Notice)
	}
}

func TestParseMackerelErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"empty", ``, "empty body"},
		{"whitespace", "  \n", "empty body"},
		{"array", `[{"event":"alert"}]`, "expected a JSON object"},
		{"truncated", `{"event":"alert","alert":{"id":"a"`, "invalid JSON"},
		{"garbage", `{event: alert}`, "invalid JSON at byte 2"},
		{"alert missing", `{"event":"alert"}`, "without an alert object"},
		{"alert id missing", `{"event":"alert","alert":{"status":"critical"}}`, "without alert.id"},
		{"alert id blank", `{"event":"alert","alert":{"id":"  "}}`, "without alert.id"},
		{"alert not object", `{"event":"alert","alert":"x"}`, "field alert"},
		{"threshold not a number", `{"event":"alert","alert":{"id":"a","criticalThreshold":"high"}}`, "field alert.criticalThreshold"},
		{"metric value object", `{"event":"alert","alert":{"id":"a","metricValue":{}}}`, "field alert.metricValue"},
		{"openedAt garbage", `{"event":"alert","alert":{"id":"a","openedAt":"yesterday"}}`, "field alert.openedAt"},
		{"openedAt absurd", `{"event":"alert","alert":{"id":"a","openedAt":1e20}}`, "out-of-range"},
		{"monitorName object", `{"event":"alert","alert":{"id":"a","monitorName":{"x":1}}}`, "field alert.monitorName: expected string, got object"},
		{"roles not array", `{"event":"alert","host":{"roles":"web"},"alert":{"id":"a"}}`, "field host.roles"},
		{"alertGroup missing", `{"event":"alertGroup"}`, "without an alertGroup object"},
		{"alertGroup id missing", `{"event":"alertGroup","alertGroup":{"status":"CRITICAL"}}`, "without alertGroup.id"},
		{"isOpen garbage", `{"event":"alert","alert":{"id":"a","isOpen":"maybe"}}`, "field alert.isOpen"},
		{"event object", `{"event":{"x":1}}`, "field event"},
		{"too large", `{"event":"alert","memo":"` + strings.Repeat("x", MaxBody) + `"}`, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := ParseMackerel([]byte(tt.body))
			if err == nil {
				t.Fatalf("no error; event %+v", ev)
			}
			if !errors.Is(err, ErrBadPayload) {
				t.Errorf("error %v does not wrap ErrBadPayload", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestParseMackerelHostVsService(t *testing.T) {
	for _, tt := range []struct {
		file        string
		host, svc   string
		target      string
		wantMetrics bool
	}{
		{"mackerel-connectivity.json", "db01", "", "db01", false},
		{"mackerel-check.json", "app01", "", "app01", false},
		{"mackerel-external.json", "", "shop", "shop", false},
		{"mackerel-expression.json", "", "", "", true},
		{"mackerel-anomaly.json", "app01", "", "app01", false},
	} {
		ev, err := ParseMackerel(readFixture(t, tt.file))
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		a := ev.Alert
		gotHost := ""
		if a.Host != nil {
			gotHost = a.Host.Name
		}
		if gotHost != tt.host || a.Service != tt.svc || a.Target() != tt.target || a.Metric.IsZero() == tt.wantMetrics {
			t.Errorf("%s: host=%q service=%q target=%q metric=%+v", tt.file, gotHost, a.Service, a.Target(), a.Metric)
		}
	}
}

func FuzzParseMackerel(f *testing.F) {
	seedFixtures(f, "mackerel-*.json")
	for _, s := range []string{``, `{}`, `null`, `{"event":"alert","alert":{"id":"a","openedAt":-1}}`,
		`{"event":"alertGroup","alertGroup":{"id":"g","createdAt":"1717390800000"}}`, `{"event":"alert","alert":{"id":"a","metricValue":"1e400"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseMackerel(body)
		if rejected(t, err) {
			return
		}
		checkEvent(t, ev)
	})
}

// seedFixtures adds every testdata file matching pattern to f's corpus.
func seedFixtures(f *testing.F, pattern string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures match %s (%v)", pattern, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// rejected reports whether a parse failed, and fails the test unless the
// error wraps ErrBadPayload: bad input is always rejected as bad input.
func rejected(t *testing.T, err error) bool {
	t.Helper()
	if err != nil && !errors.Is(err, ErrBadPayload) {
		t.Fatalf("error does not wrap ErrBadPayload: %v", err)
	}
	return err != nil
}

// checkEvent asserts the invariants every successfully parsed event keeps.
func checkEvent(t *testing.T, ev alert.Event) {
	t.Helper()
	if (ev.Alert == nil) == (ev.Notice == nil) {
		t.Fatalf("exactly one of Alert and Notice must be set: %+v", ev)
	}
	if ev.Kind.IsAlert() != (ev.Alert != nil) {
		t.Fatalf("kind %q with alert=%v", ev.Kind, ev.Alert != nil)
	}
	if ev.Key() == "" {
		t.Fatal("empty key")
	}
	if a := ev.Alert; a != nil {
		if _, ok := alert.ParseStatus(string(a.Status)); !ok {
			t.Fatalf("status %q not normalised", a.Status)
		}
		if a.Open && !a.ClosedAt.IsZero() {
			t.Fatal("open alert with a close time")
		}
		if a.Monitor == "" {
			t.Fatal("empty monitor name")
		}
	}
}
