package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/handlers/httpapi"
	"github.com/tokken/tokken/handlers/lambdaevent"
	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/handlers/slacksig"
	"github.com/tokken/tokken/infra/auditlog"
	"github.com/tokken/tokken/infra/awsconfig"
	"github.com/tokken/tokken/infra/config"
	"github.com/tokken/tokken/infra/dynamostore"
	"github.com/tokken/tokken/infra/ecsindex"
	"github.com/tokken/tokken/infra/instindex"
	"github.com/tokken/tokken/infra/localqueue"
	"github.com/tokken/tokken/infra/localtimer"
	"github.com/tokken/tokken/infra/logctx"
	"github.com/tokken/tokken/infra/metrics"
	"github.com/tokken/tokken/infra/slackapi"
	"github.com/tokken/tokken/infra/slackdir"
	"github.com/tokken/tokken/infra/sqsqueue"
	"github.com/tokken/tokken/policies"
)

// JobSweep is the periodic reconcile job: `serve` enqueues it every
// SweepInterval and on Lambda the sweep schedule in template.yaml sends it.
// Its handler runs every feature's sweeper (app.sweepers).
const JobSweep = "sweep"

// SweepInterval is how often the reconcile sweep runs (bot.SweepInterval,
// the rate of template.yaml's SweepSchedule).
const SweepInterval = bot.SweepInterval

// configError marks a start-up failure caused by configuration (exit 2).
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// unavailableError says why a feature cannot run in this process: a
// capability it needs is absent (no Slack bot token, no AWS region), which
// is a legitimate way to run part of tokken (an ingress-only process, a
// local run without AWS), not a wrong value. The feature's command answers
// with the reason and the rest of tokken runs.
type unavailableError struct{ reason string }

func (e *unavailableError) Error() string { return e.reason }

// featureAWS returns the AWS configuration a feature needs for what (named
// in the reason): a missing region makes the feature unavailable, any
// other failure is returned.
func (a *app) featureAWS(ctx context.Context, what string) (aws.Config, error) {
	c, err := a.awsConfig(ctx)
	if errors.Is(err, awsconfig.ErrNoRegion) {
		return aws.Config{}, &unavailableError{reason: fmt.Sprintf("AWS configuration (%s): %v", what, err)}
	}
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration (%s): %w", what, err)
	}
	return c, nil
}

// ec2Fleet is what tokken does with EC2 (infra/ec2fleet): check the
// instances of an access request, find, tag and reboot instances for
// domain operations, and list the fleet for the instance index. Only the
// worker calls it (newEC2: link_full.go, link_ingress.go).
type ec2Fleet interface {
	access.Inventory
	domainjoin.Instances
	instindex.Lister
}

// ecsFleet is what tokken does with ECS (infra/ecsfleet): check an
// ecs-exec request's task or service, and list clusters for the ECS
// index. Only the worker calls it (newECS).
type ecsFleet interface {
	access.ECSInventory
	ecsindex.Lister
}

// app is tokken wired together from a Config: the same graph serves
// `tokken serve`, `tokken invoke` and Lambda.
type app struct {
	cfg  config.Config
	log  *slog.Logger
	info buildInfo

	store  bot.Store
	jobs   *bot.JobMux
	queue  bot.Queue
	timers bot.Timers
	slack  *slackapi.Client // nil without SLACK_BOT_TOKEN (an ingress-only process)
	router *router.Router
	// policies is the loaded policy directory: the bot.Authorizer and the
	// access.Catalogue every feature uses.
	policies *policies.Set

	http       http.Handler // nil when the role serves no HTTP
	dispatcher *lambdaevent.Dispatcher

	// sweepers run on every JobSweep; features append theirs.
	sweepers []func(context.Context) error

	// Inbound hooks features set while registering (before http and
	// dispatcher are built): the Mackerel webhook handler, the SNS handler
	// (CloudWatch alarms) and EventBridge handlers by source + detail-type.
	mackerel    http.Handler
	sns         lambdaevent.SNSHandler
	eventBridge []eventBridgeRoute
	// releaseSNS takes CodePipeline approval notifications (routeSNS).
	releaseSNS lambdaevent.SNSHandler

	// audit is the one audit trail every feature records to (auditlog,
	// counted by metrics.Auditor).
	audit bot.Auditor
	// directory resolves Slack users into policy principals (e-mail and
	// the Slack user groups the policies name); nil without a bot token.
	directory *slackdir.Directory
	// accessUI is the access feature once registered (nil when access is
	// unavailable): alerts open its request modal pre-filled.
	accessUI *accessui.Feature

	// metrics records tokken's EMF metrics (see observability.go): flushed
	// after every Lambda invocation and every minute under serve.
	metrics *metrics.Recorder

	local      *localqueue.Queue   // set when jobs run in-process
	localTimer *localtimer.Service // set when timers are in-process
	aws        *aws.Config         // loaded on first use
}

// buildApp wires tokken from cfg. Nothing runs yet: call start. On error,
// whatever was opened is closed.
func buildApp(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...appOption) (_ *app, err error) {
	var o appOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkBuild(cfg); err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, info: readBuildInfo(), jobs: bot.NewJobMux()}
	if a.metrics, err = newRecorder(cfg.Role, o.metricsOut); err != nil {
		return nil, err
	}
	// Start-up waits on the network twice, for the Slack secret (Secrets
	// Manager) and for Slack's answer to which team tokken is installed in
	// (auth.test); it overlaps both waits with its own work, loading the
	// policies and wiring the features, rather than adding them up. On
	// Lambda every cold start pays start-up before its first answer.
	loaded := make(chan policyLoad, 1)
	go func() {
		s, err := policies.Load(cfg.PolicyDir)
		loaded <- policyLoad{s, err}
	}()
	var teamAsked <-chan struct{} // closed when auth.test has answered or failed
	defer func() {
		if teamAsked != nil {
			<-teamAsked
		}
		if err != nil {
			a.close(context.Background()) // a, not the nil result: close what was opened
		}
	}()

	if cfg.SecretsARN != "" {
		awsCfg, err := a.awsConfig(ctx)
		if err != nil {
			return nil, err
		}
		if err := cfg.ResolveSecrets(ctx, config.SecretsManager(secretsmanager.NewFromConfig(awsCfg))); err != nil {
			return nil, &configError{err}
		}
		a.cfg = cfg
	}

	if a.store, err = a.openStore(ctx); err != nil {
		return nil, err
	}
	if a.queue, err = a.openQueue(ctx); err != nil {
		return nil, err
	}
	if a.timers, err = a.openTimers(ctx); err != nil {
		return nil, err
	}
	if cfg.SlackBotToken != "" {
		a.slack = slackapi.New(cfg.SlackBotToken.Reveal(), slackapi.Options{APIURL: cfg.SlackAPIURL, Logger: log, OnRateLimited: a.metrics.SlackRateLimited})
	}
	team := a.installationTeam()
	if team != nil {
		teamAsked = a.askTeam(ctx)
	}
	pl := <-loaded
	if pl.err != nil {
		return nil, &configError{fmt.Errorf("TOKKEN_POLICY_DIR %s: %w", cfg.PolicyDir, pl.err)}
	}
	a.policies = pl.set
	if a.router, err = router.New(router.Deps{Store: a.store, Queue: a.queue, Log: log, Team: team}); err != nil {
		return nil, err
	}

	// Shared by the features: one audit trail (store, log, audit channel;
	// counted once into the metrics) and one Slack directory resolving
	// e-mails and the user groups the policies name.
	auditOpts := auditlog.Options{Channel: cfg.Access.AuditChannel, Location: cfg.Location, Logger: log}
	if a.slack != nil {
		auditOpts.Poster = a.slack
		a.directory = slackdir.New(a.slack, a.policies.SlackUserGroups(), log)
		a.directory.Team = team
	}
	a.audit = metrics.Auditor(auditlog.New(a.store, auditOpts), a.metrics)

	// Features. Each registers its commands, interactions, events and jobs;
	// an error is a wiring failure (bad values were refused by config.Load).
	registerCore(a)
	if err := registerAccess(a); err != nil {
		return nil, err
	}
	if err := registerAlerts(a); err != nil {
		return nil, err
	}
	if err := registerDomain(a); err != nil {
		return nil, err
	}
	registerInstances(a)
	if err := registerRelease(a); err != nil {
		return nil, err
	}
	registerECSIndex(a)

	if cfg.Role.ServesHTTP() {
		a.http = measureAck(a.metrics, httpapi.New(httpapi.Deps{
			Router:   a.router,
			Verifier: slacksig.Verifier{Secret: []byte(cfg.SlackSigningSecret.Reveal())},
			Mackerel: a.mackerel,
			Log:      log,
			Version:  a.info.Version,
		}))
	}
	deps := lambdaevent.Deps{
		Role: cfg.Role, HTTP: a.http, Jobs: logctx.JobHandler(a.jobs.HandleJob), DecodeJob: sqsqueue.DecodeMessage, Log: log,
	}
	if cfg.Role.RunsJobs() && a.local == nil && cfg.TimerDeadLetterARN != "" {
		// The worker consumes the job dead-letter queue (deadjobs.go).
		deps.DeadLetterARN, deps.GiveUp = cfg.TimerDeadLetterARN, a.giveUpDead
	}
	a.dispatcher, err = lambdaevent.New(deps)
	if err != nil {
		return nil, err
	}
	if a.sns != nil || a.releaseSNS != nil {
		a.dispatcher.HandleSNS(a.routeSNS())
	}
	for _, r := range a.eventBridge {
		a.dispatcher.HandleEventBridge(r.source, r.detailType, r.h)
	}
	return a, nil
}

// checkBuild refuses to run the Lambda ingress build (link_ingress.go) as
// anything but the Lambda ingress: it lacks the worker's AWS clients.
func checkBuild(cfg config.Config) error {
	if !ingressBuild || (cfg.Lambda && cfg.Role == config.RoleIngress) {
		return nil
	}
	as := "TOKKEN_ROLE=" + string(cfg.Role)
	if !cfg.Lambda {
		as += " outside Lambda"
	}
	return &configError{fmt.Errorf("this is tokken's Lambda ingress build (-tags ingress): it runs only as the Lambda ingress (TOKKEN_ROLE=ingress on Lambda), not as %s; the full build (make build-WorkerFunction, or go build .) runs every role", as)}
}

// policyLoad is the result of policies.Load, loaded while start-up waits
// on the network.
type policyLoad struct {
	set *policies.Set
	err error
}

// installationTeam returns where the installation's team comes from:
// Slack's auth.test, asked once at start (askTeam) and, until it answers,
// again when it is needed (slackapi.Client.Team). The Router refuses
// commands and interactions from any other team, and while the team is
// unknown; the directory treats users of other teams as external. Without
// a bot token there is no team to check.
func (a *app) installationTeam() func(context.Context) (string, error) {
	if a.slack == nil {
		if a.cfg.Role.ServesHTTP() || a.cfg.SocketMode() {
			a.log.Warn("no SLACK_BOT_TOKEN: requests from other Slack teams cannot be told apart and are not refused")
		}
		return nil
	}
	return a.slack.Team
}

// askTeam asks Slack for the installation's team in the background and
// closes the returned channel once Slack has answered or the ask failed;
// buildApp waits for it before it returns, so a started app knows its team
// unless Slack was unreachable. A failure is logged, not fatal: a worker
// must go on expiring and revoking access while Slack is unreachable.
func (a *app) askTeam(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if team, err := a.slack.Team(actx); err != nil {
			a.log.Error("slack auth.test failed: Slack requests are refused until Slack says which team tokken is installed in", "err", err)
		} else {
			a.log.Info("installed in Slack team", "team", team)
		}
	}()
	return done
}

// eventBridgeRoute is an EventBridge handler a feature registered.
type eventBridgeRoute struct {
	source, detailType string
	h                  lambdaevent.EventBridgeHandler
}

// handleEventBridge registers h for EventBridge events of source and
// detailType (e.g. "aws.tag", "Tag Change on Resource").
func (a *app) handleEventBridge(source, detailType string, h lambdaevent.EventBridgeHandler) {
	a.eventBridge = append(a.eventBridge, eventBridgeRoute{source, detailType, h})
}

// registerCore registers what every tokken has: late command answers and
// the reconcile sweep.
func registerCore(a *app) {
	if a.slack != nil {
		a.jobs.Handle(router.JobRespond, router.RespondJob(a.slack))
	}
	a.jobs.Handle(JobSweep, func(ctx context.Context, _ bot.Job) error {
		var errs []error
		for _, sweep := range a.sweepers {
			if err := sweep(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

func (a *app) awsConfig(ctx context.Context) (aws.Config, error) {
	if a.aws != nil {
		return *a.aws, nil
	}
	c, err := awsconfig.Load(ctx)
	if errors.Is(err, awsconfig.ErrNoRegion) {
		return aws.Config{}, &configError{err}
	}
	if err != nil {
		return aws.Config{}, err
	}
	a.aws = &c
	return c, nil
}

func (a *app) openStore(ctx context.Context) (bot.Store, error) {
	switch a.cfg.Store.Kind {
	case config.StoreDynamoDB:
		c, err := a.awsConfig(ctx)
		if err != nil {
			return nil, err
		}
		return dynamostore.New(dynamodb.NewFromConfig(c), a.cfg.Store.Table), nil
	default:
		s, err := openBolt(a.cfg.Store.Path, a.log)
		if err != nil {
			return nil, fmt.Errorf("TOKKEN_STORE=%s: %w", a.cfg.Store, err)
		}
		return s, nil
	}
}

// openQueue picks SQS when TOKKEN_QUEUE_URL is set, else the durable
// in-process queue.
func (a *app) openQueue(ctx context.Context) (bot.Queue, error) {
	if a.cfg.QueueURL != "" {
		c, err := a.awsConfig(ctx)
		if err != nil {
			return nil, err
		}
		return sqsqueue.New(sqs.NewFromConfig(c), a.cfg.QueueURL), nil
	}
	q, err := localqueue.New(a.store, logctx.JobHandler(a.jobs.HandleJob), localqueue.Options{Log: a.log, GiveUp: a.giveUp})
	if err != nil {
		return nil, err
	}
	a.local = q
	return q, nil
}

// openTimers picks EventBridge Scheduler when it is configured (the Lambda
// worker), the persistent in-process timers otherwise. The Lambda ingress
// has neither: it must hand timed work to the worker as a job.
func (a *app) openTimers(ctx context.Context) (bot.Timers, error) {
	switch {
	case a.cfg.SchedulerRoleARN != "" && a.cfg.QueueARN != "":
		c, err := a.awsConfig(ctx)
		if err != nil {
			return nil, err
		}
		return a.newSchedulerTimers(c)
	case a.cfg.Lambda:
		return noTimers{role: a.cfg.Role}, nil
	}
	t, err := localtimer.New(a.store, a.queue, localtimer.Options{Log: a.log})
	if err != nil {
		return nil, err
	}
	a.localTimer = t
	return t, nil
}

// noTimers is the Timers of a Lambda ingress: it has no scheduler
// permissions by design, so scheduling is refused with a clear error.
type noTimers struct{ role config.Role }

func (n noTimers) Schedule(_ context.Context, t bot.Timer) error {
	return fmt.Errorf("schedule timer %s: TOKKEN_ROLE=%s has no timers; enqueue a job for the worker instead", t.ID, n.role)
}

func (n noTimers) Cancel(_ context.Context, id string) error {
	return fmt.Errorf("cancel timer %s: TOKKEN_ROLE=%s has no timers; enqueue a job for the worker instead", id, n.role)
}

// start runs the in-process job workers (the JobMux is complete by now).
func (a *app) start() {
	if a.local != nil {
		a.local.Start()
	}
}

// close shuts down in dependency order: handlers still running after their
// ack, then the queue (draining), timers, and the store. It waits at most
// until ctx is done.
func (a *app) close(ctx context.Context) {
	if a.router != nil {
		if err := a.router.Wait(ctx); err != nil {
			a.log.Warn("shutdown: slack handlers still running", "err", err)
		}
	}
	if a.localTimer != nil {
		_ = a.localTimer.Close()
	}
	if a.local != nil {
		if err := a.local.Close(ctx); err != nil {
			a.log.Warn("shutdown: job queue did not drain; pending jobs run at the next start", "err", err)
		}
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			a.log.Warn("shutdown: close store", "err", err)
		}
	}
}
