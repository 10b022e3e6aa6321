package config

// Access is the configuration of the access feature (/access) beyond what
// Config holds for everyone (the time zone is Config.Location, the
// federation endpoint Config.FederationURL, the channel of tokken's own
// alerts Config.OpsChannel).
type Access struct {
	// AuditChannel receives one line per audited transition (access
	// requests and domain operations alike) and the loud break-glass
	// announcements (TOKKEN_AUDIT_CHANNEL). Empty: the audit trail goes to
	// the store and the log only, and break-glass is announced in the
	// profile's approver channel instead.
	AuditChannel string
}

// parseAccess reads the access feature's variables.
func parseAccess(get func(string) string, p *problems) Access {
	return Access{AuditChannel: p.channel("TOKKEN_AUDIT_CHANNEL", get("TOKKEN_AUDIT_CHANNEL"))}
}
