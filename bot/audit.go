package bot

import (
	"context"
	"time"
)

// AuditEvent is one line of the paper trail: every state transition of a
// request, grant, domain operation or alert appends one.
type AuditEvent struct {
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`             // Slack user id, or "tokken" for the system
	Action  string    `json:"action"`            // e.g. "access.approved", "access.revoke_failed"
	Subject string    `json:"subject"`           // request / operation / alert id
	Reason  string    `json:"reason,omitempty"`  // the human reason given, if any
	Profile string    `json:"profile,omitempty"` // access profile, if any
	// Window is the grant window when the event concerns a grant.
	WindowStart time.Time         `json:"window_start,omitzero"`
	WindowEnd   time.Time         `json:"window_end,omitzero"`
	Detail      map[string]string `json:"detail,omitempty"`
}

// Auditor records audit events: to the store, the JSON log and the audit
// channel. Record must not fail silently: an error means the event was not
// stored.
type Auditor interface {
	Record(ctx context.Context, e AuditEvent) error
}
