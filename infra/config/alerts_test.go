package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadAlerts(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr []string // variables named in the error
		check   func(t *testing.T, a Alerts)
	}{
		{name: "defaults", env: nil, check: func(t *testing.T, a Alerts) {
			if a.WebhookEnabled() || a.MackerelAPIURL != DefaultMackerelAPIURL || a.Location.String() != "Asia/Tokyo" {
				t.Errorf("defaults: %+v", a)
			}
		}},
		{name: "full", env: map[string]string{
			"MACKEREL_WEBHOOK_USER": "mackerel", "MACKEREL_WEBHOOK_PASSWORD": "0123456789abcdefXYZ",
			"MACKEREL_API_KEY": "key", "MACKEREL_API_URL": "http://127.0.0.1:9/", "TOKKEN_ALERT_CHANNEL": "C0ALERTS",
			"TOKKEN_OPS_CHANNEL": "G0OPS0001", "TOKKEN_TIMEZONE": "UTC",
		}, check: func(t *testing.T, a Alerts) {
			if !a.WebhookEnabled() || a.MackerelAPIKey.Reveal() != "key" || a.Channel != "C0ALERTS" || a.Location.String() != "UTC" {
				t.Errorf("full: %+v", a)
			}
		}},
		{name: "password without user", env: map[string]string{"MACKEREL_WEBHOOK_PASSWORD": "0123456789abcdefXYZ"}, wantErr: []string{"MACKEREL_WEBHOOK_USER"}},
		{name: "user without password", env: map[string]string{"MACKEREL_WEBHOOK_USER": "m"}, wantErr: []string{"MACKEREL_WEBHOOK_PASSWORD"}},
		{name: "short password", env: map[string]string{"MACKEREL_WEBHOOK_USER": "m", "MACKEREL_WEBHOOK_PASSWORD": "short"}, wantErr: []string{"MACKEREL_WEBHOOK_PASSWORD"}},
		{name: "user with colon", env: map[string]string{"MACKEREL_WEBHOOK_USER": "a:b", "MACKEREL_WEBHOOK_PASSWORD": "0123456789abcdefXYZ"}, wantErr: []string{"MACKEREL_WEBHOOK_USER"}},
		{name: "bad values", env: map[string]string{"MACKEREL_API_URL": "ftp://x", "TOKKEN_ALERT_CHANNEL": "#alerts", "TOKKEN_OPS_CHANNEL": "ops", "TOKKEN_TIMEZONE": "Mars/Base"},
			wantErr: []string{"MACKEREL_API_URL", "TOKKEN_ALERT_CHANNEL", "TOKKEN_OPS_CHANNEL", "TOKKEN_TIMEZONE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := LoadAlerts(func(k string) string { return tt.env[k] }, "")
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, a)
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, v := range tt.wantErr {
				if !strings.Contains(err.Error(), v+":") {
					t.Errorf("error does not name %s: %v", v, err)
				}
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("not a FieldError: %v", err)
			}
			if strings.Contains(err.Error(), "0123456789abcdef") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestLoadAlertsDotenv(t *testing.T) {
	p := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(p, []byte("TOKKEN_ALERT_CHANNEL=C0FROMFILE\nTOKKEN_OPS_CHANNEL=C0FILEOPS\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOKKEN_OPS_CHANNEL": "C0FROMENV"}
	a, err := LoadAlerts(func(k string) string { return env[k] }, p)
	if err != nil {
		t.Fatal(err)
	}
	if a.Channel != "C0FROMFILE" || a.OpsChannel != "C0FROMENV" {
		t.Errorf("dotenv precedence: %+v", a)
	}
}
