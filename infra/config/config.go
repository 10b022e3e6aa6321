// Package config reads tokken's configuration from the environment and an
// optional .env file, validates it at start-up, and resolves secrets from
// AWS Secrets Manager when TOKKEN_SECRETS_ARN is set. Load is the one
// reader: the core settings and every feature's section (Access, Alerts,
// Domain) are parsed in one pass, and Vars lists every variable it reads. Every validation error
// names the variable and what it expects, so a misconfigured process fails
// at once with a message an operator can act on instead of failing later.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/infra/windows"
)

// Role selects which half of tokken a process runs. On Lambda the same
// binary is deployed twice: an internet-facing ingress and a worker.
type Role string

// Roles.
const (
	// RoleAll runs ingress and worker in one process (the local default).
	RoleAll Role = "all"
	// RoleIngress serves HTTP only: verify, record, acknowledge, enqueue.
	RoleIngress Role = "ingress"
	// RoleWorker runs jobs, timers and AWS events; it serves no HTTP.
	RoleWorker Role = "worker"
)

// ServesHTTP reports whether the role accepts inbound HTTP traffic.
func (r Role) ServesHTTP() bool { return r == RoleAll || r == RoleIngress }

// RunsJobs reports whether the role runs jobs and AWS events.
func (r Role) RunsJobs() bool { return r == RoleAll || r == RoleWorker }

// StoreKind names a Store adapter.
type StoreKind string

// Store adapters.
const (
	StoreBolt     StoreKind = "bolt"
	StoreDynamoDB StoreKind = "dynamodb"
)

// StoreSpec is the parsed TOKKEN_STORE: "bolt:<path>" or "dynamodb:<table>".
type StoreSpec struct {
	Kind StoreKind
	// Path is the bbolt file (Kind == StoreBolt).
	Path string
	// Table is the DynamoDB table name (Kind == StoreDynamoDB).
	Table string
}

// String renders the spec in TOKKEN_STORE syntax.
func (s StoreSpec) String() string {
	if s.Kind == StoreDynamoDB {
		return "dynamodb:" + s.Table
	}
	return "bolt:" + s.Path
}

// Secret is a credential. Its String, GoString and LogValue redact it, so a
// Config can be logged or printed without leaking what it holds; call
// Reveal where the value is really needed.
type Secret string

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// String redacts: "(set)" or "(unset)".
func (s Secret) String() string {
	if s == "" {
		return "(unset)"
	}
	return "(set)"
}

// GoString redacts for %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue redacts for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText redacts when a Config is encoded as JSON or YAML.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Config is everything tokken reads from its environment.
type Config struct {
	Role Role
	// Lambda is true when AWS_LAMBDA_RUNTIME_API is set: the process is a
	// Lambda function and must call the runtime API.
	Lambda bool
	// LambdaFunction is the function's own name (AWS_LAMBDA_FUNCTION_NAME,
	// set by Lambda), fenced like Access.ProtectedARNs.
	LambdaFunction string

	SlackSigningSecret Secret
	SlackBotToken      Secret
	// SlackAppToken enables Socket Mode when set (an "xapp-" token).
	SlackAppToken Secret
	// SlackAPIURL is the Slack Web API base URL ending in "/", e.g.
	// "https://slack.com/api/"; empty means slack-go's default.
	SlackAPIURL string

	Addr      string
	Store     StoreSpec
	PolicyDir string
	// FederationURL is the AWS console federation endpoint.
	FederationURL string
	// Location is the time zone times are shown in (TOKKEN_TIMEZONE).
	Location *time.Location
	LogLevel slog.Level

	// SecretsARN, when set, names a Secrets Manager secret holding a JSON
	// object whose keys are variable names (SLACK_SIGNING_SECRET, ...).
	SecretsARN string

	// Lambda wiring (see template.yaml).
	QueueURL           string // TOKKEN_QUEUE_URL: the SQS job queue
	QueueARN           string // TOKKEN_QUEUE_ARN: target of scheduler timers
	SchedulerGroup     string // TOKKEN_SCHEDULER_GROUP
	SchedulerRoleARN   string // TOKKEN_SCHEDULER_ROLE_ARN: role Scheduler assumes to send jobs
	TimerDeadLetterARN string // TOKKEN_TIMER_DLQ_ARN: the job dead-letter queue (undeliverable timers go there too); the worker gives up the jobs it receives from it

	// OpsChannel receives tokken's own alerts that need an operator
	// (revocation failed, dead-letter queue not empty) when no alert route
	// names a channel (TOKKEN_OPS_CHANNEL). Access and alerts share it.
	OpsChannel string

	// The features' own settings.
	Access Access
	Alerts Alerts
	Domain Domain
}

// LogValue lists the configuration with secrets redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("role", string(c.Role)),
		slog.Bool("lambda", c.Lambda),
		slog.String("addr", c.Addr),
		slog.String("store", c.Store.String()),
		slog.String("policy_dir", c.PolicyDir),
		slog.String("timezone", c.Location.String()),
		slog.String("log_level", c.LogLevel.String()),
		slog.String("slack_api_url", c.SlackAPIURL),
		slog.Bool("socket_mode", c.SocketMode()),
		slog.Any("slack_signing_secret", c.SlackSigningSecret),
		slog.Any("slack_bot_token", c.SlackBotToken),
		slog.Any("slack_app_token", c.SlackAppToken),
		slog.String("secrets_arn", c.SecretsARN),
		slog.String("queue_url", c.QueueURL),
		slog.String("ops_channel", c.OpsChannel),
		slog.String("audit_channel", c.Access.AuditChannel),
		slog.String("alert_channel", c.Alerts.Channel),
		slog.Bool("mackerel_webhook", c.Alerts.WebhookEnabled()),
		slog.Any("mackerel_api_key", c.Alerts.MackerelAPIKey),
		slog.String("domain_channel", c.Domain.Channel),
	)
}

// SocketMode reports whether Slack traffic should arrive over Socket Mode.
func (c Config) SocketMode() bool { return c.SlackAppToken != "" }

// Defaults.
const (
	DefaultAddr          = "127.0.0.1:8080"
	DefaultStore         = "bolt:tokken.db"
	DefaultPolicyDir     = "./policies"
	DefaultFederationURL = "https://signin.aws.amazon.com/federation"
	DefaultTimezone      = "Asia/Tokyo"
)

// Var documents one environment variable; Vars is the list shown by
// `tokken --help` and the README's configuration table.
type Var struct {
	Name, Default, Help string
}

// Vars lists every variable tokken reads, in the order they are documented.
// The list is built on first use: some entries format their defaults, work
// no process start needs.
var Vars = sync.OnceValue(func() []Var {
	return []Var{
		{"SLACK_SIGNING_SECRET", "", "Slack app signing secret; verifies every /slack/* request (required to serve HTTP)"},
		{"SLACK_BOT_TOKEN", "", "Slack bot token, xoxb-… (required to run jobs or Socket Mode)"},
		{"SLACK_APP_TOKEN", "", "Slack app-level token, xapp-…; enables Socket Mode (no public URL needed)"},
		{"SLACK_API_URL", "", "Slack Web API base URL, for tests and proxies (default https://slack.com/api/)"},
		{"TOKKEN_ROLE", "all", "all | ingress | worker: which half of tokken this process runs"},
		{"TOKKEN_ADDR", DefaultAddr, "HTTP listen address for `tokken serve`"},
		{"TOKKEN_STORE", DefaultStore, `state store: "bolt:<path>" (embedded) or "dynamodb:<table>"`},
		{"TOKKEN_POLICY_DIR", DefaultPolicyDir, "directory of profiles (YAML) and Cedar policies"},
		{"TOKKEN_FEDERATION_URL", DefaultFederationURL, "AWS console federation endpoint"},
		{"TOKKEN_TIMEZONE", DefaultTimezone, "IANA time zone used when showing times in Slack"},
		{"TOKKEN_LOG_LEVEL", "info", "debug | info | warn | error"},
		{"TOKKEN_SECRETS_ARN", "", "Secrets Manager secret (JSON object) supplying the SLACK_* credentials, MACKEREL_WEBHOOK_PASSWORD and MACKEREL_API_KEY"},
		{"TOKKEN_QUEUE_URL", "", "SQS job queue URL (required on Lambda)"},
		{"TOKKEN_QUEUE_ARN", "", "SQS job queue ARN, target of Scheduler timers (Lambda worker)"},
		{"TOKKEN_SCHEDULER_GROUP", "", "EventBridge Scheduler group for timers (Lambda worker)"},
		{"TOKKEN_SCHEDULER_ROLE_ARN", "", "role EventBridge Scheduler assumes to enqueue timer jobs (Lambda worker)"},
		{"TOKKEN_TIMER_DLQ_ARN", "", "SQS job dead-letter queue (also for timers Scheduler cannot deliver); records from it are given up, not run (Lambda worker)"},
		{"TOKKEN_OPS_CHANNEL", "", "Slack channel id for tokken's own alerts (revoke failed, DLQ not empty) no route names"},
		{"TOKKEN_AUDIT_CHANNEL", "", "Slack channel id for the audit trail and break-glass announcements"},
		{"TOKKEN_GRANT_BOUNDARY_ARN", "", "permissions boundary every granted role must carry; others are refused (default: policy/tokken-grant-boundary of the role's account)"},
		{"TOKKEN_IDC_INSTANCE_ARN", "", "IAM Identity Center instance for identity-center profiles (default: the only instance sso:ListInstances shows)"},
		{"TOKKEN_IDC_IDENTITY_STORE_ID", "", "identity store of that instance, d-… (default: from sso:ListInstances)"},
		{"TOKKEN_IDC_PORTAL_URL", "", "AWS access portal start URL, e.g. https://d-1234567890.awsapps.com/start: identity-center DMs link to <portal>/#/console?account_id=…&role_name=…"},
		{"TOKKEN_IDC_POLL_INTERVAL", "2s", "how often an Identity Center account assignment's status is polled (10ms–1m)"},
		{"TOKKEN_PROTECTED_ARNS", "", "comma-separated ARNs of tokken's own resources, denied to every grant by its session policy (set by template.yaml)"},
		{"TOKKEN_DOMAIN_TAG", windows.TagControl, "EC2 tag asking a Windows instance to join/unjoin the domain"},
		{"TOKKEN_DOMAIN_STATUS_TAG", windows.TagStatus, "EC2 tag the instance writes to report its domain state"},
		{"TOKKEN_DOMAIN_CHANNEL", "", "Slack channel id for /domain operation messages (unset: the requester's DM)"},
		{"TOKKEN_DOMAIN_TIMEOUT", shortDuration(domainjoin.DefaultTimeout), "how long a domain operation may take before it times out (1s–24h)"},
		{"TOKKEN_DOMAIN_CHECK_EVERY", shortDuration(domainjoin.DefaultCheckEvery), "how often a domain operation's instance tags are polled (100ms–1h)"},
		{"TOKKEN_DOMAIN_APPROVAL_TIMEOUT", shortDuration(domainjoin.DefaultApprovalTimeout), "how long a domain operation may wait for approval (1m–168h)"},
		{"TOKKEN_ALERT_CHANNEL", "", "Slack channel id for alerts no route in routes.yaml gives a channel"},
		{"MACKEREL_WEBHOOK_USER", "", "Basic auth user for POST /webhooks/mackerel (with MACKEREL_WEBHOOK_PASSWORD; unset disables the webhook)"},
		{"MACKEREL_WEBHOOK_PASSWORD", "", fmt.Sprintf("Basic auth password for the Mackerel webhook, at least %d characters (or in the TOKKEN_SECRETS_ARN secret)", MinWebhookPassword)},
		{"MACKEREL_API_KEY", "", "Mackerel API key (write); enables the Close button and Mackerel downtimes (or in the TOKKEN_SECRETS_ARN secret)"},
		{"MACKEREL_API_URL", DefaultMackerelAPIURL, "Mackerel API base URL, for tests and proxies"},
		{"AWS_LAMBDA_RUNTIME_API", "", "set by Lambda: run as a Lambda function"},
		{"AWS_LAMBDA_FUNCTION_NAME", "", "set by Lambda: the function's own name, added to TOKKEN_PROTECTED_ARNS"},
		{"AWS_REGION, AWS_ENDPOINT_URL_<SERVICE>, …", "", "the AWS SDK's own variables (from the environment or ~/.aws, not .env); every AWS client honours them. Optional locally: without them requests and approvals work, granting access and /domain do not"},
	}
})

// FieldError is a validation failure of one variable.
type FieldError struct {
	Var  string // the variable name
	Want string // what it expects
	Got  string // what was found (never a secret value)
}

func (e *FieldError) Error() string {
	if e.Got == "" {
		return fmt.Sprintf("%s: want %s", e.Var, e.Want)
	}
	return fmt.Sprintf("%s: want %s, got %q", e.Var, e.Want, e.Got)
}

// Load reads the configuration. getenv is usually os.Getenv; dotenv is the
// path of a .env file read too ("" to skip; a missing file is fine). Values
// from getenv win over the file. The error joins every *FieldError found,
// core and feature variables alike, so an operator sees all mistakes at
// once. With TOKKEN_SECRETS_ARN set, credentials the secret may supply are
// checked for shape only; ResolveSecrets checks the rest.
func Load(getenv func(string) string, dotenv string) (Config, error) {
	file := map[string]string{}
	if dotenv != "" {
		data, err := os.ReadFile(dotenv)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return Config{}, fmt.Errorf("read %s: %w", dotenv, err)
		default:
			if file, err = ParseDotenv(data); err != nil {
				return Config{}, fmt.Errorf("%s: %w", dotenv, err)
			}
		}
	}
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return strings.TrimSpace(file[name])
	}
	return parse(get)
}

// problems collects the validation errors of one Load.
type problems []error

// bad records that variable name wants want but holds got ("" when unset
// or secret).
func (p *problems) bad(name, want, got string) {
	*p = append(*p, &FieldError{Var: name, Want: want, Got: got})
}

// channelIDRE is what a Slack channel id looks like: public (C…) or
// private (G…); a #name is not accepted because the Web API wants ids.
var channelIDRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[CG][A-Z0-9]{6,}$`) })

// channel checks the Slack channel id in variable name (empty is allowed:
// every channel variable is optional) and returns it.
func (p *problems) channel(name, v string) string {
	if v != "" && !channelIDRE().MatchString(v) {
		p.bad(name, "a Slack channel id such as C0123ABCD (channel details → About), not a #name", v)
	}
	return v
}

func parse(get func(string) string) (Config, error) {
	var errs problems
	bad := errs.bad
	or := func(name, def string) string {
		if v := get(name); v != "" {
			return v
		}
		return def
	}

	c := Config{
		Lambda:             get("AWS_LAMBDA_RUNTIME_API") != "",
		LambdaFunction:     get("AWS_LAMBDA_FUNCTION_NAME"),
		SlackSigningSecret: Secret(get("SLACK_SIGNING_SECRET")),
		SlackBotToken:      Secret(get("SLACK_BOT_TOKEN")),
		SlackAppToken:      Secret(get("SLACK_APP_TOKEN")),
		SlackAPIURL:        get("SLACK_API_URL"),
		Addr:               or("TOKKEN_ADDR", DefaultAddr),
		PolicyDir:          or("TOKKEN_POLICY_DIR", DefaultPolicyDir),
		FederationURL:      or("TOKKEN_FEDERATION_URL", DefaultFederationURL),
		SecretsARN:         get("TOKKEN_SECRETS_ARN"),
		QueueURL:           get("TOKKEN_QUEUE_URL"),
		QueueARN:           get("TOKKEN_QUEUE_ARN"),
		SchedulerGroup:     get("TOKKEN_SCHEDULER_GROUP"),
		SchedulerRoleARN:   get("TOKKEN_SCHEDULER_ROLE_ARN"),
		TimerDeadLetterARN: get("TOKKEN_TIMER_DLQ_ARN"),
		OpsChannel:         errs.channel("TOKKEN_OPS_CHANNEL", get("TOKKEN_OPS_CHANNEL")),
		Access:             parseAccess(get, &errs),
		Alerts:             parseAlerts(get, &errs),
		Domain:             parseDomain(get, &errs),
	}

	switch r := Role(strings.ToLower(or("TOKKEN_ROLE", string(RoleAll)))); r {
	case RoleAll, RoleIngress, RoleWorker:
		c.Role = r
	default:
		bad("TOKKEN_ROLE", `"all", "ingress" or "worker"`, string(r))
	}

	if s, err := ParseStore(or("TOKKEN_STORE", DefaultStore)); err != nil {
		errs = append(errs, err)
	} else {
		c.Store = s
	}

	if c.SlackAPIURL != "" {
		u, err := url.Parse(c.SlackAPIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("SLACK_API_URL", "an http(s) URL such as https://slack.com/api/", c.SlackAPIURL)
		} else if !strings.HasSuffix(c.SlackAPIURL, "/") {
			c.SlackAPIURL += "/" // slack-go appends method names to it
		}
	}
	// The federation exchange carries live credentials: https only, except
	// to a loopback host (a local fake in tests).
	if u, err := url.Parse(c.FederationURL); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
		bad("TOKKEN_FEDERATION_URL", "an https URL such as "+DefaultFederationURL+" (http only to a loopback host)", c.FederationURL)
	}
	if c.QueueURL != "" {
		if u, err := url.Parse(c.QueueURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("TOKKEN_QUEUE_URL", "an SQS queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/tokken", c.QueueURL)
		}
	}
	for name, v := range map[string]string{
		"TOKKEN_QUEUE_ARN": c.QueueARN, "TOKKEN_SCHEDULER_ROLE_ARN": c.SchedulerRoleARN,
		"TOKKEN_TIMER_DLQ_ARN": c.TimerDeadLetterARN, "TOKKEN_SECRETS_ARN": c.SecretsARN,
	} {
		if v != "" && !strings.HasPrefix(v, "arn:") {
			bad(name, "an ARN (arn:aws:…)", v)
		}
	}

	tz := or("TOKKEN_TIMEZONE", DefaultTimezone)
	if loc, err := time.LoadLocation(tz); err != nil {
		bad("TOKKEN_TIMEZONE", "an IANA time zone such as Asia/Tokyo or UTC", tz)
	} else {
		c.Location = loc
	}

	lvl := or("TOKKEN_LOG_LEVEL", "info")
	if err := c.LogLevel.UnmarshalText([]byte(lvl)); err != nil {
		bad("TOKKEN_LOG_LEVEL", `"debug", "info", "warn" or "error"`, lvl)
	}

	if c.Lambda {
		if c.Store.Kind == StoreBolt {
			bad("TOKKEN_STORE", `"dynamodb:<table>" on Lambda (the embedded store needs a persistent disk)`, c.Store.String())
		}
		if c.QueueURL == "" {
			bad("TOKKEN_QUEUE_URL", "the SQS job queue URL on Lambda", "")
		}
		// A Lambda worker issues grants in tokken's own account: without the
		// list of its resources, no session policy would fence them.
		if c.Role.RunsJobs() && len(c.Access.ProtectedARNs) == 0 {
			bad("TOKKEN_PROTECTED_ARNS", "tokken's own resource ARNs on the Lambda worker (template.yaml sets them)", "")
		}
		if c.Role.RunsJobs() && (c.SchedulerGroup == "" || c.SchedulerRoleARN == "" || c.QueueARN == "") {
			for name, v := range map[string]string{"TOKKEN_SCHEDULER_GROUP": c.SchedulerGroup, "TOKKEN_SCHEDULER_ROLE_ARN": c.SchedulerRoleARN, "TOKKEN_QUEUE_ARN": c.QueueARN} {
				if v == "" {
					bad(name, "a value on the Lambda worker (timers are EventBridge Scheduler schedules)", "")
				}
			}
		}
	}
	// With TOKKEN_SECRETS_ARN the secret may supply what is missing here:
	// ResolveSecrets checks presence once it has been read.
	errs = append(errs, c.checkSecrets(c.SecretsARN == "")...)

	sortErrors(errs)
	if len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	return c, nil
}

// checkSecrets validates the credentials a Secrets Manager secret may
// supply: the shape of those set (Slack's token prefixes, the webhook
// password's length) and, when presence is true, that the role has what it
// needs (the signing secret to serve HTTP, the bot token to run jobs, the
// webhook password with its user).
func (c Config) checkSecrets(presence bool) []error {
	var p problems
	if presence && c.Role.ServesHTTP() && c.SlackSigningSecret == "" {
		p.bad("SLACK_SIGNING_SECRET", "the Slack app's signing secret (Basic Information → App Credentials)", "")
	}
	if presence && (c.Role.RunsJobs() || c.SocketMode()) && c.SlackBotToken == "" {
		p.bad("SLACK_BOT_TOKEN", `the bot token starting with "xoxb-" (OAuth & Permissions)`, "")
	}
	if c.SlackSigningSecret != "" && len(c.SlackSigningSecret) < MinSigningSecret {
		p.bad("SLACK_SIGNING_SECRET", fmt.Sprintf("the whole signing secret from Basic Information → App Credentials (Slack's have 32 characters; at least %d)", MinSigningSecret), "")
	}
	p.token("SLACK_BOT_TOKEN", "xoxb-", "a bot token", "OAuth & Permissions → Bot User OAuth Token", c.SlackBotToken)
	p.token("SLACK_APP_TOKEN", "xapp-", "an app-level token", "Basic Information → App-Level Tokens", c.SlackAppToken)
	c.Alerts.checkWebhook(&p, presence)
	return p
}

// MinSigningSecret is the shortest SLACK_SIGNING_SECRET accepted. Slack's
// signing secrets have 32 hex characters; a shorter value is a placeholder
// or a truncated paste, which would only show up as every request being
// refused.
const MinSigningSecret = 20

// slackTokenRE is what follows a Slack token's prefix: Slack tokens are
// letters, digits and dashes. Placeholders such as "xoxb-" or "xoxb-…" do
// not match.
var slackTokenRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9-]{4,}$`) })

// token checks the Slack token in variable name (unset is allowed here):
// prefix followed by the token itself. what and where describe it for the
// message; the value itself is never echoed beyond its prefix.
func (p *problems) token(name, prefix, what, where string, v Secret) {
	switch s := string(v); {
	case s == "":
	case !strings.HasPrefix(s, prefix):
		p.bad(name, fmt.Sprintf("%s starting with %q (%s)", what, prefix, where), redactedPrefix(v))
	case !slackTokenRE().MatchString(strings.TrimPrefix(s, prefix)):
		got := redactedPrefix(v)
		if s == prefix {
			got = prefix + " (only the prefix: the placeholder from .env.example)"
		}
		p.bad(name, fmt.Sprintf("the whole %s: %q followed by the rest of it (%s)", strings.TrimPrefix(strings.TrimPrefix(what, "a "), "an "), prefix, where), got)
	}
}

// redactedPrefix shows at most the first four characters of a secret, enough
// to recognise a token pasted into the wrong variable.
func redactedPrefix(s Secret) string {
	r := []rune(string(s))
	if len(r) > 4 {
		r = r[:4]
	}
	return string(r) + "…"
}

func sortErrors(errs []error) {
	sort.SliceStable(errs, func(i, j int) bool {
		var a, b *FieldError
		if errors.As(errs[i], &a) && errors.As(errs[j], &b) {
			return a.Var < b.Var
		}
		return false
	})
}

// ParseStore parses a TOKKEN_STORE value.
func ParseStore(v string) (StoreSpec, error) {
	kind, rest, ok := strings.Cut(v, ":")
	switch {
	case ok && kind == string(StoreBolt) && rest != "":
		return StoreSpec{Kind: StoreBolt, Path: rest}, nil
	case ok && kind == string(StoreDynamoDB) && validTableName(rest):
		return StoreSpec{Kind: StoreDynamoDB, Table: rest}, nil
	}
	return StoreSpec{}, &FieldError{Var: "TOKKEN_STORE", Want: `"bolt:<path>" or "dynamodb:<table>"`, Got: v}
}

// validTableName applies DynamoDB's table naming rules: 3–255 characters of
// a–z, A–Z, 0–9, '_', '-', '.'.
func validTableName(s string) bool {
	if len(s) < 3 || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// shortDuration renders d the way people write it in a variable: "20m",
// "4h", "30s" rather than time.Duration's "20m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// isLoopback reports whether host names this machine (127.0.0.0/8, ::1,
// localhost).
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
