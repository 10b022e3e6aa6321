package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadAccess(t *testing.T) {
	dir := t.TempDir()
	dotenv := filepath.Join(dir, ".env")
	if err := os.WriteFile(dotenv, []byte("TOKKEN_AUDIT_CHANNEL=C0FROMFILE\nTOKKEN_OPS_CHANNEL=C0OPSFILE1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		env       map[string]string
		dotenv    string
		wantErr   []string
		wantAudit string
		wantOps   string
	}{
		{name: "unset", wantAudit: "", wantOps: ""},
		{name: "set", env: map[string]string{"TOKKEN_AUDIT_CHANNEL": "C0AUDIT01", "TOKKEN_OPS_CHANNEL": "G0OPS0001"}, wantAudit: "C0AUDIT01", wantOps: "G0OPS0001"},
		{name: "from .env", dotenv: dotenv, wantAudit: "C0FROMFILE", wantOps: "C0OPSFILE1"},
		{name: "environment wins", dotenv: dotenv, env: map[string]string{"TOKKEN_AUDIT_CHANNEL": "C0AUDIT01"}, wantAudit: "C0AUDIT01", wantOps: "C0OPSFILE1"},
		{name: "names, not ids", env: map[string]string{"TOKKEN_AUDIT_CHANNEL": "#audit", "TOKKEN_OPS_CHANNEL": "ops"}, wantErr: []string{"TOKKEN_AUDIT_CHANNEL", "TOKKEN_OPS_CHANNEL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := LoadAccess(func(k string) string { return tt.env[k] }, tt.dotenv)
			if len(tt.wantErr) > 0 {
				var fe *FieldError
				if err == nil || !errors.As(err, &fe) {
					t.Fatalf("err = %v, want field errors", err)
				}
				for _, v := range tt.wantErr {
					if !strings.Contains(err.Error(), v+":") {
						t.Errorf("error does not name %s: %v", v, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.AuditChannel != tt.wantAudit || a.OpsChannel != tt.wantOps {
				t.Errorf("got %+v, want audit %q ops %q", a, tt.wantAudit, tt.wantOps)
			}
		})
	}
	if _, err := LoadAccess(func(string) string { return "" }, dir); err == nil {
		t.Error("a directory as .env file: no error")
	}
}
