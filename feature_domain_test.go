package main

import (
	"strings"
	"testing"
	"time"
)

func TestLoadDomainSettings(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    domainSettings
		wantErr []string // every variable named in the error
	}{
		{"defaults", nil, domainSettings{}, nil},
		{"all set", map[string]string{
			"TOKKEN_DOMAIN_CHANNEL": "C0DOMAIN01", "TOKKEN_DOMAIN_TIMEOUT": "30m",
			"TOKKEN_DOMAIN_CHECK_EVERY": "15s", "TOKKEN_DOMAIN_APPROVAL_TIMEOUT": "2h",
		}, domainSettings{channel: "C0DOMAIN01", timeout: 30 * time.Minute, checkEvery: 15 * time.Second, approvalTimeout: 2 * time.Hour}, nil},
		{"channel name instead of id", map[string]string{"TOKKEN_DOMAIN_CHANNEL": "#domain-ops"}, domainSettings{}, []string{"TOKKEN_DOMAIN_CHANNEL"}},
		{"every mistake at once", map[string]string{
			"TOKKEN_DOMAIN_TIMEOUT": "20", "TOKKEN_DOMAIN_CHECK_EVERY": "1ms", "TOKKEN_DOMAIN_APPROVAL_TIMEOUT": "30d",
		}, domainSettings{}, []string{"TOKKEN_DOMAIN_TIMEOUT", "TOKKEN_DOMAIN_CHECK_EVERY", "TOKKEN_DOMAIN_APPROVAL_TIMEOUT"}},
		{"timeout above a day", map[string]string{"TOKKEN_DOMAIN_TIMEOUT": "25h"}, domainSettings{}, []string{"TOKKEN_DOMAIN_TIMEOUT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadDomainSettings(func(k string) string { return tt.env[k] })
			if len(tt.wantErr) == 0 {
				if err != nil || got != tt.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %v", tt.env)
			}
			for _, name := range tt.wantErr {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name %s", err, name)
				}
			}
		})
	}
}
