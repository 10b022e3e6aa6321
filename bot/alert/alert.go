// Package alert is tokken's model of monitoring alerts: what an alert from
// Mackerel, a CloudWatch alarm or tokken itself says (normalised to one
// Alert type), the non-alert notices those sources also send (host status
// changes, monitor edits, test pings), and the routing rules that decide
// which Slack channel hears about each one and whom it pings.
//
// The package is pure: parsing and rendering live in handlers/alertui,
// the YAML route loader in policies. The alert lifecycle
// (dedup, update in place, storms, flapping, silences) builds on the stable
// Key every Alert and Notice carries.
package alert

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/tokken/tokken/bot"
)

// Source is the system an alert came from.
type Source string

// Sources tokken ingests.
const (
	SourceMackerel   Source = "mackerel"
	SourceCloudWatch Source = "cloudwatch"
	// SourceTokken marks tokken's own operational alerts (revoke failed,
	// domain operation timed out, dead-letter queue not empty).
	SourceTokken Source = "tokken"
)

// Sources lists the known sources, for validation and error messages.
func Sources() []Source { return []Source{SourceMackerel, SourceCloudWatch, SourceTokken} }

// Status is an alert's severity, normalised to Mackerel's four levels.
type Status string

// Statuses. CloudWatch maps ALARM to critical, OK to ok and
// INSUFFICIENT_DATA to unknown.
const (
	StatusOK       Status = "ok"
	StatusWarning  Status = "warning"
	StatusCritical Status = "critical"
	StatusUnknown  Status = "unknown"
)

// Statuses lists the valid statuses in increasing severity.
func Statuses() []Status {
	return []Status{StatusOK, StatusWarning, StatusCritical, StatusUnknown}
}

// ParseStatus normalises a status word case-insensitively (Mackerel's
// alertGroup events use "CRITICAL", alert events "critical"). ok is false
// for anything else.
func ParseStatus(s string) (Status, bool) {
	st := Status(strings.ToLower(strings.TrimSpace(s)))
	switch st {
	case StatusOK, StatusWarning, StatusCritical, StatusUnknown:
		return st, true
	}
	return "", false
}

// Rank orders statuses by severity: ok 0, warning 1, critical 2, unknown 3.
// Mackerel treats unknown as "critical or higher", and so does tokken; an
// unrecognised status ranks as unknown.
func (s Status) Rank() int {
	switch s {
	case StatusOK:
		return 0
	case StatusWarning:
		return 1
	case StatusCritical:
		return 2
	}
	return 3
}

// Word is the status in capitals, as shown in titles ("CRITICAL"), so the
// severity is readable without colour and matches Slack keyword alerts.
func (s Status) Word() string {
	if s == "" {
		return "UNKNOWN"
	}
	return strings.ToUpper(string(s))
}

// Kind is the type of event a source sent.
type Kind string

// Event kinds. Mackerel's event names are kept verbatim; anything tokken
// does not recognise becomes KindUnknown and is still stored and shown.
const (
	KindAlert         Kind = "alert"
	KindAlertGroup    Kind = "alertGroup"
	KindHostStatus    Kind = "hostStatus"
	KindHostRegister  Kind = "hostRegister"
	KindHostRetire    Kind = "hostRetire"
	KindMonitorCreate Kind = "monitorCreate"
	KindMonitorUpdate Kind = "monitorUpdate"
	KindMonitorDelete Kind = "monitorDelete"
	KindSample        Kind = "sample"
	KindUnknown       Kind = "unknown"
)

// IsAlert reports whether events of kind k carry an Alert (as opposed to a
// Notice).
func (k Kind) IsAlert() bool { return k == KindAlert || k == KindAlertGroup }

// Event is one parsed delivery from a source: exactly one of Alert and
// Notice is set, according to Kind.IsAlert.
type Event struct {
	Kind   Kind
	Alert  *Alert
	Notice *Notice
}

// Key is the deduplication key of the event's alert or notice.
func (e Event) Key() string {
	switch {
	case e.Alert != nil:
		return e.Alert.Key
	case e.Notice != nil:
		return e.Notice.Key
	}
	return ""
}

// Host is the machine an alert is about.
type Host struct {
	ID   string `json:"id,omitempty"`   // Mackerel host id, or the EC2 instance id for CloudWatch
	Name string `json:"name,omitempty"` // display name
	URL  string `json:"url,omitempty"`
	// Status is Mackerel's host status: working, standby, maintenance or
	// poweroff (empty when unknown).
	Status  string `json:"status,omitempty"`
	Retired bool   `json:"retired,omitempty"`
	Roles   []Role `json:"roles,omitempty"`
	// InstanceID is the EC2 instance behind the host when the source says so
	// (CloudWatch InstanceId dimension, Mackerel resourceInfo): what
	// "Request access to this host" targets.
	InstanceID string `json:"instance_id,omitempty"`
}

// Role is a Mackerel service role a host belongs to.
type Role struct {
	Service    string `json:"service"`
	Role       string `json:"role"`
	ServiceURL string `json:"service_url,omitempty"`
	RoleURL    string `json:"role_url,omitempty"`
}

// Fullname is "service: role", Mackerel's own notation.
func (r Role) Fullname() string { return r.Service + ": " + r.Role }

// Metric is the measurement that crossed a threshold, for metric monitors
// (Mackerel host, service and expression monitors; CloudWatch alarms). Every
// number is optional: a manual close carries no value, an external monitor no
// threshold.
type Metric struct {
	Label    string   `json:"label,omitempty"`
	Value    *float64 `json:"value,omitempty"`
	Operator string   `json:"operator,omitempty"` // ">", "<", ">=", "<=" or free text
	Warning  *float64 `json:"warning,omitempty"`
	Critical *float64 `json:"critical,omitempty"`
}

// IsZero reports whether m says nothing.
func (m Metric) IsZero() bool {
	return m.Label == "" && m.Value == nil && m.Operator == "" && m.Warning == nil && m.Critical == nil
}

// Alert is one alert from any source, normalised. The same Key arrives again
// for re-sends, status changes and the close; the lifecycle updates one Slack
// message per Key.
type Alert struct {
	Source Source `json:"source"`
	// Key identifies the alert across deliveries: "mackerel:<alert id>",
	// "mackerel-group:<alert group id>", "cloudwatch:<alarm ARN>",
	// "tokken:<check>:<subject>". A CloudWatch alarm keeps its key across
	// episodes: an Open alert arriving for a closed key starts a new one.
	Key string `json:"key"`
	// ID is the source's own identifier (Mackerel alert id, alarm ARN), for
	// API calls such as Mackerel's close.
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`          // KindAlert or KindAlertGroup
	Org  string `json:"org,omitempty"` // Mackerel organisation, AWS account id, or "tokken"
	// Status is the current severity; Open is false once the alert closed
	// (Mackerel sends status ok with isOpen false; CloudWatch OK).
	Status Status `json:"status"`
	Open   bool   `json:"open"`
	// Monitor names the rule that fired (Mackerel monitor, alarm name);
	// MonitorType is Mackerel's monitor type (host, service, connectivity,
	// external, check, expression, anomalyDetection, query…), "alarm" or
	// "composite-alarm" for CloudWatch, the check name for tokken.
	Monitor     string `json:"monitor"`
	MonitorType string `json:"monitor_type,omitempty"`
	Host        *Host  `json:"host,omitempty"`
	// Service is set for service-scoped alerts (Mackerel service metric and
	// external monitors, CloudWatch alarms tagged with a service).
	Service    string `json:"service,omitempty"`
	ServiceURL string `json:"service_url,omitempty"`
	Metric     Metric `json:"metric,omitzero"`
	// Message is the source's one-line description ("CPU % 6 > 5",
	// "unreachable", an alarm's state reason).
	Message string `json:"message,omitempty"`
	// Memo is the monitor's memo or alarm description: often a runbook,
	// multi-line, and untrusted text.
	Memo string `json:"memo,omitempty"`
	// Trigger says what caused this delivery, as free text ("monitor",
	// "monitoring", "manual close", "hostRetire"…); sources disagree on the
	// vocabulary, so it is never interpreted beyond display.
	Trigger string `json:"trigger,omitempty"`
	// User is who acted at the source (e.g. closed the alert by hand).
	User     string `json:"user,omitempty"`
	ImageURL string `json:"image_url,omitempty"`
	URL      string `json:"url,omitempty"`
	// OpenedAt is when the alert (episode) began; ClosedAt is zero while
	// open; StatusChangedAt is the latest status change, if known.
	OpenedAt        time.Time `json:"opened_at,omitzero"`
	ClosedAt        time.Time `json:"closed_at,omitzero"`
	StatusChangedAt time.Time `json:"status_changed_at,omitzero"`
	// Account and Region are the AWS account and region of a CloudWatch
	// alarm; Tags are alarm tags when the source includes them.
	Account string            `json:"account,omitempty"`
	Region  string            `json:"region,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
	// Environment is derived for routing (see Routes.Environment); parsers
	// leave it empty.
	Environment string `json:"environment,omitempty"`
	// Raw is the payload exactly as received, kept for audit and for fields
	// tokken does not model.
	Raw json.RawMessage `json:"raw,omitempty"`
}

// Target names what the alert is about for titles: the host name, else the
// service, else the instance id, else "".
func (a Alert) Target() string {
	switch {
	case a.Host != nil && a.Host.Name != "":
		return a.Host.Name
	case a.Service != "":
		return a.Service
	case a.Host != nil && a.Host.InstanceID != "":
		return a.Host.InstanceID
	case a.Host != nil:
		return a.Host.ID
	}
	return ""
}

// InstanceID is the EC2 instance behind the alert, if any is known: the
// host's InstanceID, or a host id that looks like one (CloudWatch).
func (a Alert) InstanceID() string {
	if a.Host == nil {
		return ""
	}
	if a.Host.InstanceID != "" {
		return a.Host.InstanceID
	}
	if bot.IsInstanceID(a.Host.ID) {
		return a.Host.ID
	}
	return ""
}

// Duration is how long the alert was open: ClosedAt − OpenedAt, or 0 when
// either is unknown or the alert is still open.
func (a Alert) Duration() time.Duration {
	if a.OpenedAt.IsZero() || a.ClosedAt.IsZero() || a.ClosedAt.Before(a.OpenedAt) {
		return 0
	}
	return a.ClosedAt.Sub(a.OpenedAt)
}

// Operational builds one of tokken's own alerts (source tokken) so that
// "revoke failed" or "DLQ not empty" reach on-call through the same routes,
// rendering and lifecycle as monitoring alerts. check names the condition
// ("revoke_failed"), subject what it is about (a request id); together they
// form the key, so repeated reports update one message. A StatusOK report
// closes it.
func Operational(check, subject string, status Status, message string, at time.Time) Alert {
	a := Alert{
		Source:      SourceTokken,
		Key:         "tokken:" + check + ":" + subject,
		ID:          check + ":" + subject,
		Kind:        KindAlert,
		Org:         "tokken",
		Status:      status,
		Open:        status != StatusOK,
		Monitor:     check,
		MonitorType: "tokken",
		Message:     message,
		Trigger:     "tokken",
	}
	if a.Open {
		a.OpenedAt = at
	} else {
		a.ClosedAt = at
	}
	a.StatusChangedAt = at
	return a
}

// Notice is a non-alert event: a host changed status, registered or
// retired, a monitor was created, updated or deleted, a test ("sample")
// notification, or an event tokken does not recognise. Notices are stored
// and shown plainly, never dropped.
type Notice struct {
	Source Source `json:"source"`
	// Key identifies the notice for deduplication of retried deliveries:
	// "<source>:<kind>:<hash of the payload>".
	Key  string `json:"key"`
	Kind Kind   `json:"kind"`
	// Type is the event name as the source sent it (useful for KindUnknown).
	Type string `json:"type,omitempty"`
	Org  string `json:"org,omitempty"`
	// Title is a one-line plain-text summary, e.g.
	// "Host app01 status changed: working → maintenance".
	Title   string `json:"title"`
	Host    *Host  `json:"host,omitempty"`
	Monitor string `json:"monitor,omitempty"`
	User    string `json:"user,omitempty"`
	Message string `json:"message,omitempty"`
	Memo    string `json:"memo,omitempty"`
	URL     string `json:"url,omitempty"`
	// At is when the source says it happened; zero if it does not say.
	At  time.Time       `json:"at,omitzero"`
	Raw json.RawMessage `json:"raw,omitempty"`
}
