package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/testkit/mackerelfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

// TestAlertsStormAfterSlack429: 200 Mackerel alerts arrive at `tokken
// serve` while Slack answers every chat.postMessage with 429 for three
// seconds. Once Slack accepts posts again, every alert is shown (the first
// ones in their own messages, the rest listed in the storm summary's
// thread) within seconds, by the flushes pacing queued: the reconcile
// sweep runs only at start and then every five minutes, so it cannot be
// what shows them.
func TestAlertsStormAfterSlack429(t *testing.T) {
	const n = 200
	const window = 3 * time.Second
	fake := alertsFake(t)
	mk := mackerelfake.New(t, "")
	s := startServe(t, fake, alertsEnv(t, mk)...)

	var tmpl map[string]any
	if err := json.Unmarshal(alertsFixture(t, "mackerel-host-critical.json"), &tmpl); err != nil {
		t.Fatal(err)
	}
	bodies := make([][]byte, n)
	for i := range n {
		tmpl["alert"].(map[string]any)["id"] = fmt.Sprintf("burst%05d", i)
		tmpl["host"].(map[string]any)["name"] = fmt.Sprintf("web%05d", i)
		bodies[i], _ = json.Marshal(tmpl)
	}

	fake.RateLimitFor("chat.postMessage", window)
	limitEnds := time.Now().Add(window)
	var wg sync.WaitGroup
	errs := make(chan string, n)
	next := make(chan []byte)
	for range 8 {
		wg.Go(func() {
			for body := range next {
				req, _ := http.NewRequest(http.MethodPost, s.base+"/webhooks/mackerel", bytes.NewReader(body))
				req.SetBasicAuth(alertsHookUser, alertsHookPass)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err.Error()
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errs <- fmt.Sprintf("webhook: HTTP %d", resp.StatusCode)
				}
			}
		})
	}
	for _, b := range bodies {
		next <- b
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// About a post a second from the window's end: the own messages, the
	// summary, its thread; the sweep would come after five minutes.
	limit := window + 40*time.Second
	if !fake.Until(limit, func(f *slackfake.Fake) bool {
		own, listed, summary := alertsShown(f)
		return summary && own+listed == n
	}) {
		own, listed, summary := alertsShown(fake)
		t.Fatalf("%s after the alerts arrived: %d own messages, %d listed in a storm thread (summary posted: %v); want all %d shown",
			limit, own, listed, summary, n)
	}
	own, _, _ := alertsShown(fake)
	took := time.Since(limitEnds)
	// A post slot each, with room for a loaded machine.
	if max := time.Duration(own+6) * 2 * time.Second; took > max {
		t.Errorf("last alert shown %s after Slack accepted posts again; want within %s", took.Round(time.Millisecond), max)
	}
	t.Logf("%d own messages; every alert shown %s after Slack accepted posts again", own, took.Round(time.Millisecond))
	s.stop()
}

// alertsShown counts the CPU alerts Slack shows in the alert channels:
// top-level alert messages (own), hosts listed in a storm summary's thread
// (listed), and whether a storm summary was posted.
func alertsShown(f *slackfake.Fake) (own, listed int, summary bool) {
	for _, ch := range alertsChannels {
		for _, m := range f.Messages(ch) {
			switch {
			case m.ThreadTS != "":
			case strings.Contains(m.Text, "Alert storm"):
				summary = true
				for _, r := range f.Thread(ch, m.TS) {
					listed += strings.Count(r.Text, "web0")
				}
			case strings.Contains(m.Text, "CRITICAL: CPU %"):
				own++
			}
		}
	}
	return own, listed, summary
}
