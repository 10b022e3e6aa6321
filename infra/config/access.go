package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Access is the configuration of the access feature (/access) beyond what
// Config holds (the time zone is Config.Location, the federation endpoint
// Config.FederationURL). It is loaded by LoadAccess, on its own, so a
// mistake here names its variable the way Load does.
type Access struct {
	// AuditChannel receives one line per access transition and the loud
	// break-glass announcements (TOKKEN_AUDIT_CHANNEL). Empty: the audit
	// trail goes to the store and the log only, and break-glass is announced
	// in the profile's approver channel instead.
	AuditChannel string
	// OpsChannel receives alerts that need an operator, such as a
	// revocation that keeps failing (TOKKEN_OPS_CHANNEL, the same variable
	// the alert feature reads). Empty: they go to the audit channel, else
	// the approver channel.
	OpsChannel string
}

// AccessVars documents the variables LoadAccess reads.
var AccessVars = []Var{
	{"TOKKEN_AUDIT_CHANNEL", "", "Slack channel id for the access audit trail and break-glass announcements"},
	{"TOKKEN_OPS_CHANNEL", "", "Slack channel id for tokken's own alerts (revoke failed, DLQ not empty) no route names"},
}

// LoadAccess reads the access configuration. getenv and dotenv are as for
// Load (the environment wins over the file). The error joins a *FieldError
// per bad variable.
func LoadAccess(getenv func(string) string, dotenv string) (Access, error) {
	get, err := lookup(getenv, dotenv)
	if err != nil {
		return Access{}, err
	}
	a := Access{AuditChannel: get("TOKKEN_AUDIT_CHANNEL"), OpsChannel: get("TOKKEN_OPS_CHANNEL")}
	var errs []error
	for _, v := range []struct{ name, value string }{
		{"TOKKEN_AUDIT_CHANNEL", a.AuditChannel}, {"TOKKEN_OPS_CHANNEL", a.OpsChannel},
	} {
		if v.value != "" && !channelIDRE.MatchString(v.value) {
			errs = append(errs, &FieldError{Var: v.name, Want: "a Slack channel id such as C0123ABCD (channel details → About)", Got: v.value})
		}
	}
	sortErrors(errs)
	if len(errs) > 0 {
		return a, errors.Join(errs...)
	}
	return a, nil
}

// lookup returns a getter that reads a variable from getenv, else from the
// dotenv file ("" to skip; a missing file is fine), trimmed.
func lookup(getenv func(string) string, dotenv string) (func(string) string, error) {
	file := map[string]string{}
	if dotenv != "" {
		data, err := os.ReadFile(dotenv)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", dotenv, err)
		default:
			if file, err = ParseDotenv(data); err != nil {
				return nil, fmt.Errorf("%s: %w", dotenv, err)
			}
		}
	}
	return func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return strings.TrimSpace(file[name])
	}, nil
}
