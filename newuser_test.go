package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokken/tokken/handlers/slacksig"
	"github.com/tokken/tokken/testkit/slackfake"
)

// waitIdle waits until the app's handlers and in-process jobs are done.
func waitIdle(t *testing.T, a *app) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.router.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.local.Idle(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestNoEventHandlerWithoutSubscription: the manifests subscribe to no
// Events API event, and tokken answers none: an @-mention delivered
// anyway (an app configured by hand) is acknowledged and posts nothing,
// rather than a handler nobody can reach in a correctly set-up app.
func TestNoEventHandlerWithoutSubscription(t *testing.T) {
	for _, f := range []string{"slackapp/manifest.yaml", "slackapp/manifest.socket-mode.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Settings struct {
				EventSubscriptions *struct {
					BotEvents []string `yaml:"bot_events"`
				} `yaml:"event_subscriptions"`
			} `yaml:"settings"`
		}
		if err := yaml.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if e := m.Settings.EventSubscriptions; e != nil && len(e.BotEvents) > 0 {
			t.Errorf("%s subscribes to %v: this test assumes none", f, e.BotEvents)
		}
	}

	fake := slackfake.New(t)
	fake.AddChannel("C0GENERAL1", "general")
	a, _, _ := testApp(t, fake, nil)
	a.start()
	body := []byte(`{"type":"event_callback","event_id":"Ev0MENTION1","event_time":1767225600,"team_id":"T0TEAM0001",` +
		`"event":{"type":"app_mention","user":"U0SRE00001","text":"<@U0TOKKEN1> hi","ts":"1767225600.000100","channel":"C0GENERAL1"}}`)
	req := httptest.NewRequest(http.MethodPost, "http://tokken/slack/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	slacksig.SignRequest(req, []byte(fake.SigningSecret()), time.Now(), body)
	rec := httptest.NewRecorder()
	a.http.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("/slack/events: %d %s", rec.Code, rec.Body)
	}
	waitIdle(t, a)
	if msgs := fake.Messages("C0GENERAL1"); len(msgs) != 0 {
		t.Errorf("an event no manifest subscribes to was answered: %+v", msgs)
	}
}
