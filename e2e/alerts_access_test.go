package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/handlers/alertui"
	"github.com/tokken/tokken/testkit/awsfake"
	"github.com/tokken/tokken/testkit/mackerelfake"
	"github.com/tokken/tokken/testkit/slackfake"
)

// TestAlertsRequestAccessOpensPrefilledModal: "Request access to this host"
// on a Mackerel alert opens the access request modal with the instance
// behind the alert (Mackerel's host name resolved through the instance
// index), the one ssm profile that can target it, and a reason quoting the
// alert — through tokken serve, the webhook and a signed click.
func TestAlertsRequestAccessOpensPrefilledModal(t *testing.T) {
	fake := alertsFake(t)
	mk := mackerelfake.New(t, "")
	aws := awsfake.New(t)
	const instance = "i-0a1b2c3d4e5f60718"
	aws.EC2().AddInstance(awsfake.Instance{ID: instance, Name: "app01", Tags: map[string]string{"Env": "prod"}})
	aws.EC2().AddInstance(awsfake.Instance{ID: "i-0a1b2c3d4e5f60719", Name: "app02", Tags: map[string]string{"Env": "prod"}})
	env := alertsEnv(t, mk)
	for k, v := range aws.Env() {
		env = append(env, k+"="+v)
	}
	env = append(env, "TOKKEN_POLICY_DIR="+policyCopy(t, 1, false)) // no working-hours rule: runs at any hour
	s := startServe(t, fake, env...)
	waitLog(t, s, "instance index refreshed")

	msg := postCritical(t, s, fake)
	pressAlertButton(t, s, fake, alertsOnCall, alertui.ActionRequestAccess, "mackerel:4Fbh2K6yWfe", msg)
	fake.WaitFor(t, 10*time.Second, func(f *slackfake.Fake) bool { return len(f.Views()) == 1 })

	v := fake.Views()[0]
	if v.User != alertsOnCall {
		t.Fatalf("modal opened for %q, want %s", v.User, alertsOnCall)
	}
	var targets, profile, reason string
	for _, b := range v.Request.Blocks.BlockSet {
		in, ok := b.(*slack.InputBlock)
		if !ok {
			continue
		}
		switch el := in.Element.(type) {
		case *slack.MultiSelectBlockElement:
			for _, o := range el.InitialOptions {
				targets += o.Value + " "
			}
		case *slack.SelectBlockElement:
			if el.InitialOption != nil {
				profile = el.InitialOption.Value
			}
		case *slack.PlainTextInputBlockElement:
			if strings.Contains(el.InitialValue, "investigating alert") {
				reason = el.InitialValue
			}
		}
	}
	if strings.TrimSpace(targets) != instance {
		t.Errorf("pre-selected instances %q, want %s (app01 resolved through the index)", targets, instance)
	}
	if profile != "prod-ssm" {
		t.Errorf("pre-selected profile %q, want prod-ssm (the one ssm profile selecting Env=prod)", profile)
	}
	if !strings.Contains(reason, "app01") {
		t.Errorf("reason %q does not quote the alert", reason)
	}
	if n := len(fake.Ephemerals(alertsOnCall)); n != 0 {
		t.Errorf("%d ephemeral fallbacks sent although the modal opened", n)
	}
}
