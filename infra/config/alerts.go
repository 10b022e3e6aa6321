package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Alerts is the configuration of the alert feature (Mackerel webhooks,
// CloudWatch alarms, on-call buttons). It is loaded by LoadAlerts, on its
// own, so a mistake here names its variable the way Load does.
type Alerts struct {
	// WebhookUser and WebhookPassword protect POST /webhooks/mackerel with
	// HTTP Basic auth (Mackerel puts them in the webhook URL:
	// https://user:password@host/webhooks/mackerel). Both empty disables
	// the webhook (it answers 503).
	WebhookUser     string
	WebhookPassword Secret
	// MackerelAPIKey enables the Close button and Mackerel downtimes for
	// silences; MackerelAPIURL is Mackerel's API base URL.
	MackerelAPIKey Secret
	MackerelAPIURL string
	// Channel receives alerts no route gives a channel; OpsChannel
	// receives tokken's own alerts (revoke failed, DLQ not empty) that no
	// route names. Slack channel ids.
	Channel    string
	OpsChannel string
	// Location is the zone alert times are shown in and "until 09:00
	// tomorrow" is computed in (TOKKEN_TIMEZONE).
	Location *time.Location
}

// WebhookEnabled reports whether the Mackerel webhook has credentials.
func (a Alerts) WebhookEnabled() bool { return a.WebhookUser != "" && a.WebhookPassword != "" }

// DefaultMackerelAPIURL is Mackerel's API.
const DefaultMackerelAPIURL = "https://api.mackerelio.com/"

// MinWebhookPassword is the shortest webhook password accepted: it is the
// only thing between the internet and the alert pipeline.
const MinWebhookPassword = 16

// AlertVars documents the variables LoadAlerts reads.
var AlertVars = []Var{
	{"MACKEREL_WEBHOOK_USER", "", "Basic auth user for POST /webhooks/mackerel (with MACKEREL_WEBHOOK_PASSWORD; unset disables the webhook)"},
	{"MACKEREL_WEBHOOK_PASSWORD", "", fmt.Sprintf("Basic auth password for the Mackerel webhook, at least %d characters", MinWebhookPassword)},
	{"MACKEREL_API_KEY", "", "Mackerel API key (write); enables the Close button and Mackerel downtimes for silences"},
	{"MACKEREL_API_URL", DefaultMackerelAPIURL, "Mackerel API base URL, for tests and proxies"},
	{"TOKKEN_ALERT_CHANNEL", "", "Slack channel id for alerts no route in routes.yaml gives a channel"},
	{"TOKKEN_OPS_CHANNEL", "", "Slack channel id for tokken's own alerts (revoke failed, DLQ not empty) no route names"},
	{"TOKKEN_TIMEZONE", DefaultTimezone, "IANA time zone of alert times and \"until 09:00 tomorrow\""},
}

var channelIDRE = regexp.MustCompile(`^[CG][A-Z0-9]{6,}$`)

// LoadAlerts reads the alert configuration. getenv and dotenv are as for
// Load (the environment wins over the file). The error joins a *FieldError
// per bad variable.
func LoadAlerts(getenv func(string) string, dotenv string) (Alerts, error) {
	file := map[string]string{}
	if dotenv != "" {
		data, err := os.ReadFile(dotenv)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return Alerts{}, fmt.Errorf("read %s: %w", dotenv, err)
		default:
			if file, err = ParseDotenv(data); err != nil {
				return Alerts{}, fmt.Errorf("%s: %w", dotenv, err)
			}
		}
	}
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return strings.TrimSpace(file[name])
	}
	var errs []error
	bad := func(name, want, got string) { errs = append(errs, &FieldError{Var: name, Want: want, Got: got}) }

	a := Alerts{
		WebhookUser:     get("MACKEREL_WEBHOOK_USER"),
		WebhookPassword: Secret(get("MACKEREL_WEBHOOK_PASSWORD")),
		MackerelAPIKey:  Secret(get("MACKEREL_API_KEY")),
		MackerelAPIURL:  get("MACKEREL_API_URL"),
		Channel:         get("TOKKEN_ALERT_CHANNEL"),
		OpsChannel:      get("TOKKEN_OPS_CHANNEL"),
	}
	switch {
	case a.WebhookUser == "" && a.WebhookPassword != "":
		bad("MACKEREL_WEBHOOK_USER", "a user name when MACKEREL_WEBHOOK_PASSWORD is set", "")
	case a.WebhookUser != "" && a.WebhookPassword == "":
		bad("MACKEREL_WEBHOOK_PASSWORD", "a password when MACKEREL_WEBHOOK_USER is set", "")
	case strings.ContainsAny(a.WebhookUser, ":@/ "):
		bad("MACKEREL_WEBHOOK_USER", `a user name without ":", "@", "/" or spaces (it goes into a URL)`, a.WebhookUser)
	case a.WebhookPassword != "" && len(a.WebhookPassword) < MinWebhookPassword:
		bad("MACKEREL_WEBHOOK_PASSWORD", fmt.Sprintf("at least %d characters", MinWebhookPassword), redactedPrefix(a.WebhookPassword))
	}
	if a.MackerelAPIURL == "" {
		a.MackerelAPIURL = DefaultMackerelAPIURL
	}
	if u, err := url.Parse(a.MackerelAPIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("MACKEREL_API_URL", "an http(s) URL such as "+DefaultMackerelAPIURL, a.MackerelAPIURL)
	}
	for name, v := range map[string]string{"TOKKEN_ALERT_CHANNEL": a.Channel, "TOKKEN_OPS_CHANNEL": a.OpsChannel} {
		if v != "" && !channelIDRE.MatchString(v) {
			bad(name, "a Slack channel id such as C0123ABCD (channel details → About)", v)
		}
	}
	tz := get("TOKKEN_TIMEZONE")
	if tz == "" {
		tz = DefaultTimezone
	}
	if loc, err := time.LoadLocation(tz); err != nil {
		bad("TOKKEN_TIMEZONE", "an IANA time zone such as Asia/Tokyo or UTC", tz)
	} else {
		a.Location = loc
	}
	sortErrors(errs)
	if len(errs) > 0 {
		return a, errors.Join(errs...)
	}
	return a, nil
}
