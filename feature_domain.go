package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/handlers/domainui"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/infra/config"
	"github.com/tokken/tokken/infra/ec2fleet"
	"github.com/tokken/tokken/infra/slackapi"
	"github.com/tokken/tokken/infra/windows"
)

// registerDomain wires Windows domain join/leave (/domain): the command,
// the Approve/Deny/Cancel buttons and the deny modal at ingress; the
// domainjoin service, its jobs and the EventBridge tag-change handler on
// the worker. Where the worker cannot run operations (no AWS region, no
// Slack bot token) /domain answers with the reason instead of
// queueing work nobody would do.
func registerDomain(a *app) {
	log := a.log.With("feature", "domain")
	scheme := windows.DefaultScheme()
	scheme.Control, scheme.Status = a.cfg.DomainTag, a.cfg.DomainStatusTag
	settings, err := loadDomainSettings(domainGetenv(".env"))
	if err == nil {
		err = scheme.Validate()
	}
	var h *domainui.Handler
	if err == nil {
		deps := domainui.Deps{Queue: a.queue, Tags: scheme, Log: log}
		if a.slack != nil {
			deps.Views = a.slack
		}
		h, err = domainui.New(deps)
	}
	if err == nil && a.cfg.Role.RunsJobs() {
		err = startDomainService(a, scheme, settings, log)
		if err == nil {
			a.handleEventBridge(domainui.TagEventSource, domainui.TagEventDetailType, h.TagEvent)
		}
	}
	if err != nil {
		log.Error("domain operations are unavailable", "err", err)
		reason := err.Error()
		a.router.HandleCommand("/domain", func(context.Context, slack.SlashCommand) (*slack.Msg, error) {
			return &slack.Msg{Text: "Domain operations are unavailable in this tokken: " + mrkdwn.Escape(reason)}, nil
		})
		return
	}
	a.router.HandleCommand("/domain", h.Command)
	a.router.HandleInteraction(domainui.Namespace, h.Interaction)
}

// startDomainService builds the domainjoin service and registers its jobs.
func startDomainService(a *app, scheme domainjoin.TagScheme, s domainSettings, log *slog.Logger) error {
	if a.slack == nil {
		return errors.New("SLACK_BOT_TOKEN is not set: operation messages cannot be posted")
	}
	if a.policies == nil {
		return errors.New("no policy set is loaded")
	}
	awsCfg, err := a.awsConfig(context.Background())
	if err != nil {
		return fmt.Errorf("AWS configuration (EC2 is needed to tag and reboot instances): %w", err)
	}
	nc := domainui.NotifierConfig{Channel: s.channel, Log: log}
	if slices.Contains(a.jobs.Kinds(), alert.JobReport) { // registerAlerts ran and is enabled
		nc.Raise = func(ctx context.Context, opID, summary string) error {
			return alert.Report(ctx, a.queue, alert.Operational(domainui.AlertCheck, opID, alert.StatusCritical, summary, time.Now()))
		}
	} else {
		log.Warn("alerts are disabled: a timed-out domain operation is announced in the domain channel only")
	}
	notifier, err := domainui.NewNotifier(a.slack, nc)
	if err != nil {
		return err
	}
	svc, err := domainjoin.NewService(domainjoin.Config{
		Tags: scheme, Timeout: s.timeout, CheckEvery: s.checkEvery, ApprovalTimeout: s.approvalTimeout, Log: log,
	}, domainjoin.Deps{
		Store:      a.store,
		Instances:  ec2fleet.New(awsCfg),
		Notifier:   notifier,
		Authorizer: domainPolicy{set: a.policies, users: a.slack, log: log},
		Timers:     a.timers,
		Auditor:    domainAuditor{store: a.store, log: log},
	})
	if err != nil {
		return err
	}
	svc.Register(a.jobs)
	if s.channel == "" {
		log.Warn("TOKKEN_DOMAIN_CHANNEL is not set: operation messages go to the requester's DM, where approvers cannot see them")
	}
	return nil
}

// domainGetenv looks a variable up in the environment, then in the dotenv
// file at path (as config.Load does); an unreadable file is ignored here,
// config.Load has already reported it.
func domainGetenv(path string) func(string) string {
	file := map[string]string{}
	if data, err := os.ReadFile(path); err == nil {
		if f, err := config.ParseDotenv(data); err == nil {
			file = f
		}
	}
	return func(name string) string {
		if v := strings.TrimSpace(os.Getenv(name)); v != "" {
			return v
		}
		return strings.TrimSpace(file[name])
	}
}

// domainSettings are the domain feature's tunables.
type domainSettings struct {
	channel                              string
	timeout, checkEvery, approvalTimeout time.Duration
}

var slackChannelID = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)

// loadDomainSettings reads TOKKEN_DOMAIN_CHANNEL (channel id for operation
// messages), TOKKEN_DOMAIN_TIMEOUT (default 20m), TOKKEN_DOMAIN_CHECK_EVERY
// (default 30s) and TOKKEN_DOMAIN_APPROVAL_TIMEOUT (default 4h). Errors
// name the variable.
func loadDomainSettings(getenv func(string) string) (domainSettings, error) {
	var s domainSettings
	var errs []error
	s.channel = getenv("TOKKEN_DOMAIN_CHANNEL")
	if s.channel != "" && !slackChannelID.MatchString(s.channel) {
		errs = append(errs, fmt.Errorf("TOKKEN_DOMAIN_CHANNEL: want a channel id such as C0123456789 (not a #name), got %q", s.channel))
	}
	for _, d := range []struct {
		name     string
		dst      *time.Duration
		min, max time.Duration
	}{
		{"TOKKEN_DOMAIN_TIMEOUT", &s.timeout, time.Second, 24 * time.Hour},
		{"TOKKEN_DOMAIN_CHECK_EVERY", &s.checkEvery, 100 * time.Millisecond, time.Hour},
		{"TOKKEN_DOMAIN_APPROVAL_TIMEOUT", &s.approvalTimeout, time.Minute, 7 * 24 * time.Hour},
	} {
		v := getenv(d.name)
		if v == "" {
			continue // the service's default
		}
		n, err := time.ParseDuration(v)
		if err != nil || n < d.min || n > d.max {
			errs = append(errs, fmt.Errorf("%s: want a duration between %s and %s such as 20m, got %q", d.name, d.min, d.max, v))
			continue
		}
		*d.dst = n
	}
	return s, errors.Join(errs...)
}

// domainUsers is the Slack lookup the policy adapter uses for e-mails
// (*slackapi.Client).
type domainUsers interface {
	UserInfo(ctx context.Context, userID string) (slackapi.User, error)
}

// domainPolicy is the policy set with principals completed from Slack:
// the /domain command and the buttons only know the user id, and
// groups.yaml may list people by e-mail, so the e-mail is looked up
// (users.info) before the set decides. A failed lookup decides on the id
// alone: it can only deny more, never allow more.
type domainPolicy struct {
	set   bot.Authorizer
	users domainUsers
	log   *slog.Logger
}

func (p domainPolicy) Authorize(ctx context.Context, q bot.AuthzQuery) (bot.Decision, error) {
	if q.Principal.Email == "" && p.users != nil {
		if u, err := p.users.UserInfo(ctx, q.Principal.ID); err == nil {
			q.Principal.Email = u.Email
		} else {
			p.log.WarnContext(ctx, "users.info failed; deciding on the user id alone", "user", q.Principal.ID, "err", err)
		}
	}
	return p.set.Authorize(ctx, q)
}

// domainAuditor records audit events in the store (kind "audit", keyed by
// time so a listing is chronological) and in the JSON log.
type domainAuditor struct {
	store bot.Store
	log   *slog.Logger
}

// kindAudit is the store kind of audit events.
const kindAudit = "audit"

func (d domainAuditor) Record(ctx context.Context, e bot.AuditEvent) error {
	d.log.InfoContext(ctx, "audit", "audit_action", e.Action, "actor", e.Actor, "subject", e.Subject,
		"reason", e.Reason, "detail", e.Detail, "at", e.At)
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit event %s %s: %w", e.Action, e.Subject, err)
	}
	key := fmt.Sprintf("%s/%s/%s", e.At.UTC().Format("2006-01-02T15:04:05.000000000Z"), e.Subject, e.Action)
	for i := 0; ; i++ {
		k := key
		if i > 0 {
			k = fmt.Sprintf("%s/%d", key, i)
		}
		_, err := d.store.Put(ctx, bot.Record{Kind: kindAudit, Key: k, Data: data})
		if err == nil {
			return nil
		}
		if !errors.Is(err, bot.ErrConflict) || i == 9 {
			return fmt.Errorf("store audit event %s %s: %w", e.Action, e.Subject, err)
		}
	}
}
