package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Alerts is the configuration of the alert feature (Mackerel webhooks,
// CloudWatch alarms, on-call buttons). Alert times are shown in
// Config.Location and tokken's own alerts go to Config.OpsChannel.
type Alerts struct {
	// WebhookUser and WebhookPassword protect POST /webhooks/mackerel with
	// HTTP Basic auth (Mackerel puts them in the webhook URL:
	// https://user:password@host/webhooks/mackerel). Both empty disables
	// the webhook (it answers 503). The password may come from the
	// TOKKEN_SECRETS_ARN secret.
	WebhookUser     string
	WebhookPassword Secret
	// MackerelAPIKey enables the Close button and Mackerel downtimes for
	// silences (it may come from the TOKKEN_SECRETS_ARN secret);
	// MackerelAPIURL is Mackerel's API base URL.
	MackerelAPIKey Secret
	MackerelAPIURL string
	// Channel receives alerts no route gives a channel (a Slack channel
	// id, TOKKEN_ALERT_CHANNEL).
	Channel string
}

// WebhookEnabled reports whether the Mackerel webhook has credentials.
func (a Alerts) WebhookEnabled() bool { return a.WebhookUser != "" && a.WebhookPassword != "" }

// DefaultMackerelAPIURL is Mackerel's API.
const DefaultMackerelAPIURL = "https://api.mackerelio.com/"

// MinWebhookPassword is the shortest webhook password accepted: it is the
// only thing between the internet and the alert pipeline.
const MinWebhookPassword = 16

// parseAlerts reads the alert feature's variables. The webhook
// credentials are checked with the other secrets (Config.checkSecrets).
func parseAlerts(get func(string) string, p *problems) Alerts {
	a := Alerts{
		WebhookUser:     get("MACKEREL_WEBHOOK_USER"),
		WebhookPassword: Secret(get("MACKEREL_WEBHOOK_PASSWORD")),
		MackerelAPIKey:  Secret(get("MACKEREL_API_KEY")),
		MackerelAPIURL:  get("MACKEREL_API_URL"),
		Channel:         p.channel("TOKKEN_ALERT_CHANNEL", get("TOKKEN_ALERT_CHANNEL")),
	}
	if a.MackerelAPIURL == "" {
		a.MackerelAPIURL = DefaultMackerelAPIURL
	}
	if u, err := url.Parse(a.MackerelAPIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.bad("MACKEREL_API_URL", "an http(s) URL such as "+DefaultMackerelAPIURL, a.MackerelAPIURL)
	}
	return a
}

// checkWebhook validates the webhook credentials: the user goes into a URL
// and the password must be long; with presence, a user needs a password.
// A password without a user is always an error: the user is never a
// secret, so no secret can supply it later. A short password is reported
// by its length, never by its characters.
func (a Alerts) checkWebhook(p *problems, presence bool) {
	if strings.ContainsAny(a.WebhookUser, ":@/ ") {
		p.bad("MACKEREL_WEBHOOK_USER", `a user name without ":", "@", "/" or spaces (it goes into a URL)`, a.WebhookUser)
	}
	switch {
	case a.WebhookUser == "" && a.WebhookPassword != "":
		p.bad("MACKEREL_WEBHOOK_USER", "a user name when MACKEREL_WEBHOOK_PASSWORD is set", "")
	case presence && a.WebhookUser != "" && a.WebhookPassword == "":
		p.bad("MACKEREL_WEBHOOK_PASSWORD", "a password when MACKEREL_WEBHOOK_USER is set", "")
	case a.WebhookPassword != "" && len(a.WebhookPassword) < MinWebhookPassword:
		p.bad("MACKEREL_WEBHOOK_PASSWORD", fmt.Sprintf("at least %d characters", MinWebhookPassword), fmt.Sprintf("%d characters", len(a.WebhookPassword)))
	}
}
