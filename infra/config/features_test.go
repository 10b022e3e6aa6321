package config

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLoadFeatureErrorsNameTheVariable goes through every mistake the
// feature sections can hold: each is a *FieldError naming its variable,
// joined with the others, and no secret is echoed.
func TestLoadFeatureErrorsNameTheVariable(t *testing.T) {
	const longPass = "0123456789abcdefXYZ"
	tests := []struct {
		name string
		env  map[string]string
		want []string // variables named, each followed by ": want"
	}{
		{"audit channel name", map[string]string{"TOKKEN_AUDIT_CHANNEL": "#audit"}, []string{"TOKKEN_AUDIT_CHANNEL"}},
		{"ops channel name", map[string]string{"TOKKEN_OPS_CHANNEL": "ops"}, []string{"TOKKEN_OPS_CHANNEL"}},
		{"alert channel too short", map[string]string{"TOKKEN_ALERT_CHANNEL": "C12"}, []string{"TOKKEN_ALERT_CHANNEL"}},
		{"domain channel lower case", map[string]string{"TOKKEN_DOMAIN_CHANNEL": "c0domain01"}, []string{"TOKKEN_DOMAIN_CHANNEL"}},
		{"a DM is not a channel", map[string]string{"TOKKEN_DOMAIN_CHANNEL": "D0DIRECT01"}, []string{"TOKKEN_DOMAIN_CHANNEL"}},
		{"password without user", map[string]string{"MACKEREL_WEBHOOK_PASSWORD": longPass}, []string{"MACKEREL_WEBHOOK_USER"}},
		{"user without password", map[string]string{"MACKEREL_WEBHOOK_USER": "mackerel"}, []string{"MACKEREL_WEBHOOK_PASSWORD"}},
		{"short password", map[string]string{"MACKEREL_WEBHOOK_USER": "mackerel", "MACKEREL_WEBHOOK_PASSWORD": "short"}, []string{"MACKEREL_WEBHOOK_PASSWORD"}},
		{"user with colon", map[string]string{"MACKEREL_WEBHOOK_USER": "a:b", "MACKEREL_WEBHOOK_PASSWORD": longPass}, []string{"MACKEREL_WEBHOOK_USER"}},
		{"mackerel url", map[string]string{"MACKEREL_API_URL": "ftp://x"}, []string{"MACKEREL_API_URL"}},
		{"timeout without unit", map[string]string{"TOKKEN_DOMAIN_TIMEOUT": "20"}, []string{"TOKKEN_DOMAIN_TIMEOUT"}},
		{"timeout in words", map[string]string{"TOKKEN_DOMAIN_TIMEOUT": "soon"}, []string{"TOKKEN_DOMAIN_TIMEOUT"}},
		{"timeout above a day", map[string]string{"TOKKEN_DOMAIN_TIMEOUT": "25h"}, []string{"TOKKEN_DOMAIN_TIMEOUT"}},
		{"check every too often", map[string]string{"TOKKEN_DOMAIN_CHECK_EVERY": "1ms"}, []string{"TOKKEN_DOMAIN_CHECK_EVERY"}},
		{"approval in days", map[string]string{"TOKKEN_DOMAIN_APPROVAL_TIMEOUT": "30d"}, []string{"TOKKEN_DOMAIN_APPROVAL_TIMEOUT"}},
		{"tag with a space", map[string]string{"TOKKEN_DOMAIN_TAG": "join me"}, []string{"TOKKEN_DOMAIN_TAG"}},
		{"status tag taken by the script", map[string]string{"TOKKEN_DOMAIN_STATUS_TAG": "domain-ack"}, []string{"TOKKEN_DOMAIN_STATUS_TAG"}},
		{"tags collide", map[string]string{"TOKKEN_DOMAIN_TAG": "ad", "TOKKEN_DOMAIN_STATUS_TAG": "ad"}, []string{"TOKKEN_DOMAIN_STATUS_TAG"}},
		{"every mistake at once", map[string]string{
			"TOKKEN_AUDIT_CHANNEL": "#a", "TOKKEN_OPS_CHANNEL": "#o", "TOKKEN_ALERT_CHANNEL": "#al", "TOKKEN_DOMAIN_CHANNEL": "#d",
			"MACKEREL_API_URL": "x", "TOKKEN_DOMAIN_TIMEOUT": "soon", "TOKKEN_DOMAIN_CHECK_EVERY": "2h",
			"TOKKEN_DOMAIN_APPROVAL_TIMEOUT": "1s", "TOKKEN_DOMAIN_TAG": "", "TOKKEN_DOMAIN_STATUS_TAG": "a/b",
			"MACKEREL_WEBHOOK_USER": "m", "MACKEREL_WEBHOOK_PASSWORD": "tiny", "TOKKEN_TIMEZONE": "Mars/Base",
		}, []string{
			"TOKKEN_AUDIT_CHANNEL", "TOKKEN_OPS_CHANNEL", "TOKKEN_ALERT_CHANNEL", "TOKKEN_DOMAIN_CHANNEL", "MACKEREL_API_URL",
			"TOKKEN_DOMAIN_TIMEOUT", "TOKKEN_DOMAIN_CHECK_EVERY", "TOKKEN_DOMAIN_APPROVAL_TIMEOUT", "TOKKEN_DOMAIN_STATUS_TAG",
			"MACKEREL_WEBHOOK_PASSWORD", "TOKKEN_TIMEZONE",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(env(with(tt.env)), "")
			if err == nil {
				t.Fatal("no error")
			}
			for _, v := range tt.want {
				if !strings.Contains(err.Error(), v+": want") {
					t.Errorf("error does not name %s:\n%v", v, err)
				}
			}
			if n := len(unjoined(err)); n != len(tt.want) {
				t.Errorf("%d errors, want %d:\n%v", n, len(tt.want), err)
			}
			for _, e := range unjoined(err) {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Errorf("not a *FieldError: %v", e)
				}
			}
			for _, s := range []string{longPass, "short", "tiny"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error leaks the webhook password %q: %v", s, err)
				}
			}
		})
	}
}

func unjoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestLoadFeatureSections(t *testing.T) {
	c, err := Load(env(minimal), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Access.AuditChannel != "" || c.OpsChannel != "" || c.Alerts.Channel != "" || c.Alerts.WebhookEnabled() ||
		c.Alerts.MackerelAPIURL != DefaultMackerelAPIURL || c.Domain.Channel != "" ||
		c.Domain.Timeout != 20*time.Minute || c.Domain.CheckEvery != 30*time.Second || c.Domain.ApprovalTimeout != 4*time.Hour ||
		c.Domain.Tags.Control != "domain" || c.Domain.Tags.Status != "domain-status" || c.Domain.Tags.Validate() != nil {
		t.Errorf("feature defaults: %+v", c)
	}

	c, err = Load(env(with(map[string]string{
		"TOKKEN_AUDIT_CHANNEL": "C0AUDIT01", "TOKKEN_OPS_CHANNEL": "G0OPS0001", "TOKKEN_ALERT_CHANNEL": "C0ALERTS",
		"MACKEREL_WEBHOOK_USER": "mackerel", "MACKEREL_WEBHOOK_PASSWORD": "0123456789abcdefXYZ",
		"MACKEREL_API_KEY": "key", "MACKEREL_API_URL": "http://127.0.0.1:9/",
		"TOKKEN_DOMAIN_CHANNEL": "C0DOMAIN01", "TOKKEN_DOMAIN_TIMEOUT": "4s", "TOKKEN_DOMAIN_CHECK_EVERY": "300ms",
		"TOKKEN_DOMAIN_APPROVAL_TIMEOUT": "2h", "TOKKEN_DOMAIN_TAG": "ad-join", "TOKKEN_DOMAIN_STATUS_TAG": "ad-state",
		"TOKKEN_TIMEZONE": "UTC",
	})), "")
	if err != nil {
		t.Fatal(err)
	}
	want := Domain{Channel: "C0DOMAIN01", Timeout: 4 * time.Second, CheckEvery: 300 * time.Millisecond, ApprovalTimeout: 2 * time.Hour}
	want.Tags = c.Domain.Tags
	if c.Domain != want || c.Domain.Tags.Control != "ad-join" || c.Domain.Tags.Status != "ad-state" || c.Domain.Tags.Ack != "domain-ack" {
		t.Errorf("domain: %+v", c.Domain)
	}
	if c.Access.AuditChannel != "C0AUDIT01" || c.OpsChannel != "G0OPS0001" || c.Location.String() != "UTC" {
		t.Errorf("shared: audit %q ops %q tz %s", c.Access.AuditChannel, c.OpsChannel, c.Location)
	}
	if a := c.Alerts; !a.WebhookEnabled() || a.WebhookUser != "mackerel" || a.MackerelAPIKey.Reveal() != "key" ||
		a.MackerelAPIURL != "http://127.0.0.1:9/" || a.Channel != "C0ALERTS" {
		t.Errorf("alerts: %+v", a)
	}
}

// TestFeatureVariablesFromDotenv: the feature variables come from the one
// .env reading Load does, the environment winning.
func TestFeatureVariablesFromDotenv(t *testing.T) {
	p := filepath.Join(t.TempDir(), ".env")
	data := "TOKKEN_AUDIT_CHANNEL=C0FROMFILE\nTOKKEN_OPS_CHANNEL=C0OPSFILE1\nTOKKEN_DOMAIN_TIMEOUT=30m\nMACKEREL_WEBHOOK_USER=mackerel\nMACKEREL_WEBHOOK_PASSWORD='0123456789abcdefXYZ'\n"
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(with(map[string]string{"TOKKEN_OPS_CHANNEL": "C0FROMENV1"})), p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Access.AuditChannel != "C0FROMFILE" || c.OpsChannel != "C0FROMENV1" || c.Domain.Timeout != 30*time.Minute || !c.Alerts.WebhookEnabled() {
		t.Errorf("dotenv: audit %q ops %q timeout %s webhook %v", c.Access.AuditChannel, c.OpsChannel, c.Domain.Timeout, c.Alerts.WebhookEnabled())
	}
	if _, err := Load(env(minimal), filepath.Dir(p)); err == nil || !strings.Contains(err.Error(), "read "+filepath.Dir(p)) {
		t.Errorf("a directory as .env file: err %v", err)
	}
}

// TestVarsListsEveryVariableOnce records every variable Load asks for and
// requires each in Vars exactly once, and every Vars entry to be read.
func TestVarsListsEveryVariableOnce(t *testing.T) {
	read := map[string]bool{}
	_, _ = Load(func(k string) string { read[k] = true; return "" }, "")
	listed := map[string]int{}
	for _, v := range Vars() {
		if strings.Contains(v.Name, ",") { // the AWS SDK's own variables, read by the SDK
			continue
		}
		listed[v.Name]++
		if v.Help == "" {
			t.Errorf("%s has no help", v.Name)
		}
	}
	for name, n := range listed {
		if n != 1 {
			t.Errorf("%s is listed %d times", name, n)
		}
		if !read[name] {
			t.Errorf("%s is listed but Load does not read it", name)
		}
	}
	for name := range read {
		if listed[name] == 0 {
			t.Errorf("Load reads %s but Vars does not list it (tokken --help would miss it)", name)
		}
	}
	if len(read) < 30 {
		t.Errorf("Load read only %d variables: %v", len(read), slices.Sorted(maps.Keys(read)))
	}
}

// TestResolveMackerelSecrets: the webhook password and API key can live
// in the Secrets Manager secret; the environment still wins, and a user
// without a password is reported after the secret is read, not before.
func TestResolveMackerelSecrets(t *testing.T) {
	const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tokken-AbCdEf"
	const fromSM = "password-from-secrets-manager"
	sm := fakeSecretsManager(t, map[string]string{
		arn:           `{"SLACK_SIGNING_SECRET":"from-secrets-manager-0123","SLACK_BOT_TOKEN":"xoxb-1-2-sm","MACKEREL_WEBHOOK_PASSWORD":"` + fromSM + `","MACKEREL_API_KEY":"key-sm"}`,
		arn + "none":  `{"SLACK_SIGNING_SECRET":"from-secrets-manager-0123","SLACK_BOT_TOKEN":"xoxb-1-2-sm"}`,
		arn + "short": `{"SLACK_SIGNING_SECRET":"from-secrets-manager-0123","SLACK_BOT_TOKEN":"xoxb-1-2-sm","MACKEREL_WEBHOOK_PASSWORD":"tiny-secret"}`,
	})
	tests := []struct {
		name, arn string
		env       map[string]string
		wantErr   string
		wantPass  string
		wantKey   string
	}{
		{"fills from secret", arn, nil, "", fromSM, "key-sm"},
		{"environment wins", arn, map[string]string{"MACKEREL_WEBHOOK_PASSWORD": "password-from-the-environment", "MACKEREL_API_KEY": "key-env"}, "", "password-from-the-environment", "key-env"},
		{"missing from secret and environment", arn + "none", nil, "MACKEREL_WEBHOOK_PASSWORD: want a password when MACKEREL_WEBHOOK_USER is set", "", ""},
		{"short in secret", arn + "short", nil, "MACKEREL_WEBHOOK_PASSWORD: want at least 16 characters", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]string{"TOKKEN_SECRETS_ARN": tt.arn, "MACKEREL_WEBHOOK_USER": "mackerel"}
			for k, v := range tt.env {
				m[k] = v
			}
			c, err := Load(env(m), "")
			if err != nil {
				t.Fatalf("Load must leave the webhook password to the secret: %v", err)
			}
			err = c.ResolveSecrets(context.Background(), SecretsManager(sm))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "tiny-secret") {
					t.Errorf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Alerts.WebhookPassword.Reveal() != tt.wantPass || c.Alerts.MackerelAPIKey.Reveal() != tt.wantKey || !c.Alerts.WebhookEnabled() {
				t.Errorf("got password %q key %q", c.Alerts.WebhookPassword.Reveal(), c.Alerts.MackerelAPIKey.Reveal())
			}
		})
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		20 * time.Minute: "20m", 4 * time.Hour: "4h", 30 * time.Second: "30s", 100 * time.Millisecond: "100ms",
		168 * time.Hour: "168h", 90 * time.Minute: "1h30m", time.Hour + time.Second: "1h0m1s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
