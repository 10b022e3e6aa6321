package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/handlers/alertui"
	"github.com/tokken/tokken/infra/dynamostore"
	"github.com/tokken/tokken/infra/sqsqueue"
	"github.com/tokken/tokken/testkit/mackerelfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

// unusedNotifier satisfies alert.Service for the ingress's part, which
// only stores deliveries and queues their jobs (alert.Service.Ingest)
// and never shows anything.
type unusedNotifier struct{}

func (unusedNotifier) PostAlert(context.Context, string, alert.Record) (string, error) {
	return "", fmt.Errorf("the ingress does not post")
}
func (unusedNotifier) UpdateAlert(context.Context, string, string, alert.Record) error {
	return fmt.Errorf("the ingress does not post")
}
func (unusedNotifier) PostThread(context.Context, string, string, []alert.Line) error {
	return fmt.Errorf("the ingress does not post")
}
func (unusedNotifier) PostNotice(context.Context, string, alert.Notice) (string, error) {
	return "", fmt.Errorf("the ingress does not post")
}
func (unusedNotifier) PostStorm(context.Context, string, alert.Storm) (string, error) {
	return "", fmt.Errorf("the ingress does not post")
}
func (unusedNotifier) UpdateStorm(context.Context, string, string, alert.Storm) error {
	return fmt.Errorf("the ingress does not post")
}

// mackerelIngress serves the Mackerel webhook as the ingress function
// does: alertui's handler storing each delivery in the table and putting
// its job on the worker's queue.
func (w *lambdaWorld) mackerelIngress() string {
	w.t.Helper()
	ctx := context.Background()
	svc, err := alert.NewService(alert.Options{
		Store:    dynamostore.New(w.ddb.Client(), "tokken"),
		Queue:    sqsqueue.New(sqs.NewFromConfig(w.aws.Config(ctx)), w.queue),
		Notifier: unusedNotifier{},
	})
	must(w.t, err)
	h, err := alertui.NewWebhook(alertsHookUser, alertsHookPass, svc, slog.New(slog.DiscardHandler))
	must(w.t, err)
	srv := httptest.NewServer(h)
	w.t.Cleanup(srv.Close)
	return srv.URL
}

// TestLambdaAlertsShownSoonAfterSlack429: Mackerel alerts reach the
// ingress while Slack answers chat.postMessage with 429 for three seconds;
// the worker runs as Lambda runs it. Once Slack accepts posts again, every
// alert is shown (in its own message or listed in the storm summary's
// thread) within seconds, with no sweep run, and the worker is not
// invoked in a loop meanwhile or afterwards.
func TestLambdaAlertsShownSoonAfterSlack429(t *testing.T) {
	t.Parallel()
	const n = 40
	const window = 3 * time.Second
	mk := mackerelfake.New(t, "")
	w := newLambdaWorld(t, lambdaOptions{env: alertsEnv(t, mk)})
	for _, ch := range alertsChannels {
		w.slack.AddChannel(ch, strings.ToLower(ch))
	}
	ingress := w.mackerelIngress()

	var tmpl map[string]any
	must(t, json.Unmarshal(alertsFixture(t, "mackerel-host-critical.json"), &tmpl))
	start := time.Now()
	w.slack.RateLimitFor("chat.postMessage", window)
	limitEnds := time.Now().Add(window)
	for i := range n {
		tmpl["alert"].(map[string]any)["id"] = fmt.Sprintf("lburst%05d", i)
		tmpl["host"].(map[string]any)["name"] = fmt.Sprintf("web%05d", i)
		body, _ := json.Marshal(tmpl)
		req, _ := http.NewRequest(http.MethodPost, ingress+"/webhooks/mackerel", bytes.NewReader(body))
		req.SetBasicAuth(alertsHookUser, alertsHookPass)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("webhook: HTTP %d", resp.StatusCode)
		}
	}

	limit := window + 40*time.Second
	if !w.slack.Until(limit, func(f *slackfake.Fake) bool {
		own, listed, _ := alertsShown(f)
		return own+listed == n
	}) {
		own, listed, summary := alertsShown(w.slack)
		t.Fatalf("%s after the alerts arrived: %d own messages, %d listed in a storm thread (summary posted: %v); want all %d shown",
			limit, own, listed, summary, n)
	}
	own, _, _ := alertsShown(w.slack)
	took := time.Since(limitEnds)
	if max := time.Duration(own+6) * 2 * time.Second; took > max {
		t.Errorf("last alert shown %s after Slack accepted posts again; want within %s", took.Round(time.Millisecond), max)
	}
	if sweeps := w.jobsRun("", "sweep", start); sweeps != 0 {
		t.Errorf("the sweep ran %d times; the alerts must be shown without it", sweeps)
	}
	// No spin: each alert's delivery, a few syncs and flushes per post
	// slot, not a loop of invocations.
	during := w.invocationsSince(start)
	if max := 4*n + 40; during > max {
		t.Errorf("%d worker invocations to show %d alerts; want at most %d", during, n, max)
	}
	quiet := time.Now()
	time.Sleep(3 * time.Second) // a quiet stretch: nothing is due, so nothing may run
	if after := w.invocationsSince(quiet); after > 2 {
		t.Errorf("%d worker invocations in a quiet 3 s after every alert was shown; want at most 2", after)
	}
	t.Logf("%d own messages; every alert shown %s after Slack accepted posts again; %d invocations (flushes %d)",
		own, took.Round(time.Millisecond), during, w.jobsRun("", alert.JobFlush, start))
}
