package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/infra/metrics"
	"github.com/tokken/tokken/testkit/slackfake"
)

// emfSum adds up the values of metric name in the EMF lines of out.
func emfSum(t *testing.T, out, name string) float64 {
	t.Helper()
	var sum float64
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, `"_aws"`) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("EMF line does not decode: %v\n%s", err, l)
		}
		switch v := m[name].(type) {
		case float64:
			sum += v
		case []any:
			for _, x := range v {
				sum += x.(float64)
			}
		}
	}
	return sum
}

// stubNotifier answers every call with err.
type stubNotifier struct{ err error }

func (s stubNotifier) PostAlert(context.Context, string, alert.Record) (string, error) {
	return "1.0", s.err
}
func (s stubNotifier) UpdateAlert(context.Context, string, string, alert.Record) error { return s.err }
func (s stubNotifier) PostThread(context.Context, string, string, []alert.Line) error  { return s.err }
func (s stubNotifier) PostNotice(context.Context, string, alert.Notice) (string, error) {
	return "1.0", s.err
}
func (s stubNotifier) PostStorm(context.Context, string, alert.Storm) (string, error) {
	return "1.0", s.err
}
func (s stubNotifier) UpdateStorm(context.Context, string, string, alert.Storm) error { return s.err }

// stubIngester answers every Ingest with err.
type stubIngester struct{ err error }

func (s stubIngester) Ingest(context.Context, string, string, alert.Event) (string, error) {
	return "d1", s.err
}

// TestAlertCountingDecorators: each successful notifier call counts one
// message posted or updated, each successful ingest one alert in; failures
// count nothing (the retry that succeeds does) and are passed through.
func TestAlertCountingDecorators(t *testing.T) {
	ctx := context.Background()
	calls := []func(alert.Notifier) error{
		func(n alert.Notifier) error { _, err := n.PostAlert(ctx, "C0ALERTS", alert.Record{}); return err },
		func(n alert.Notifier) error { return n.UpdateAlert(ctx, "C0ALERTS", "1.0", alert.Record{}) },
		func(n alert.Notifier) error { return n.PostThread(ctx, "C0ALERTS", "1.0", nil) },
		func(n alert.Notifier) error { _, err := n.PostNotice(ctx, "C0ALERTS", alert.Notice{}); return err },
		func(n alert.Notifier) error { _, err := n.PostStorm(ctx, "C0ALERTS", alert.Storm{}); return err },
		func(n alert.Notifier) error { return n.UpdateStorm(ctx, "C0ALERTS", "1.0", alert.Storm{}) },
	}
	boom := errors.New("slack is down")
	tests := []struct {
		name       string
		err        error
		wantPosted float64
		wantIn     float64
	}{
		{"success", nil, float64(len(calls)), 1},
		{"failure", boom, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			rec := metrics.New(&out, MetricsNamespace, map[string]string{"Function": "all"})
			n := countingNotifier{next: stubNotifier{err: tt.err}, rec: rec}
			for i, call := range calls {
				if err := call(n); !errors.Is(err, tt.err) {
					t.Errorf("call %d: err %v, want %v", i, err, tt.err)
				}
			}
			in := countingIngester{next: stubIngester{err: tt.err}, rec: rec}
			if _, err := in.Ingest(ctx, "mackerel", "", alert.Event{}); !errors.Is(err, tt.err) {
				t.Errorf("ingest: err %v, want %v", err, tt.err)
			}
			if err := rec.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := emfSum(t, out.String(), metrics.AlertsPosted); got != tt.wantPosted {
				t.Errorf("alerts_posted = %v, want %v", got, tt.wantPosted)
			}
			if got := emfSum(t, out.String(), metrics.AlertsIn); got != tt.wantIn {
				t.Errorf("alerts_in = %v, want %v", got, tt.wantIn)
			}
		})
	}
}

// TestAlertMetricsThroughTheWebhook sends one Mackerel webhook through the
// wired app: one alert in, and one alert message posted per Slack post or
// update the fake recorded.
func TestAlertMetricsThroughTheWebhook(t *testing.T) {
	fake := slackfake.New(t)
	for _, ch := range []string{"C0ALERTS", "C0PRODALERTS", "C0STAGING", "C0TOKKENOPS", "C0DEVALERTS"} {
		fake.AddChannel(ch, strings.ToLower(ch))
	}
	const user, pass = "mackerel", "0123456789abcdefXYZ"
	a, logs, metricsOut := testApp(t, fake, map[string]string{"MACKEREL_WEBHOOK_USER": user, "MACKEREL_WEBHOOK_PASSWORD": pass})
	a.start()
	body, err := os.ReadFile("handlers/alertui/testdata/mackerel-host-critical.json")
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/webhooks/mackerel", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(user, pass)
	rec := httptest.NewRecorder()
	a.http.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("webhook: %d %s", rec.Code, rec.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.local.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.metrics.Flush(); err != nil {
		t.Fatal(err)
	}
	shown := len(fake.Calls("chat.postMessage")) + len(fake.Calls("chat.update"))
	if shown == 0 {
		t.Fatalf("the alert was not posted:\n%s", logs.String())
	}
	if got := emfSum(t, metricsOut.String(), metrics.AlertsIn); got != 1 {
		t.Errorf("alerts_in = %v, want 1\n%s", got, metricsOut.String())
	}
	if got := emfSum(t, metricsOut.String(), metrics.AlertsPosted); got != float64(shown) {
		t.Errorf("alerts_posted = %v, want %d (the fake's posts and updates)\n%s", got, shown, metricsOut.String())
	}
}
