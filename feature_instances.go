package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/instindex"
)

// JobInstancesRefresh re-reads the EC2 fleet into the store's instance
// index (infra/instindex), which the access modal's instance search reads
// at ingress.
const JobInstancesRefresh = "instances.refresh"

// registerInstances keeps the instance index fresh where the role runs
// jobs (worker, all): the JobInstancesRefresh job, a refresh on every
// reconcile sweep, and one at start-up. Under `serve` the sweep enqueued at
// start is the start-up refresh; a Lambda worker enqueues a refresh job
// while it initialises, so a new deployment's index is filled by its first
// invocations instead of at the next scheduled sweep. The ingress only
// reads the index and needs no EC2 permission.
//
// Without an AWS configuration (a local tokken with no region) nothing is
// registered and the instance search offers only typed instance ids.
func registerInstances(a *app) {
	if !a.cfg.Role.RunsJobs() {
		return
	}
	log := a.log.With("feature", "instances")
	awsCfg, err := a.awsConfig(context.Background())
	if err != nil {
		log.Warn("the instance index is not refreshed: the access modal's instance search offers typed instance ids only", "err", err)
		return
	}
	fleet := newEC2(awsCfg)
	refresh := func(ctx context.Context) error {
		start := time.Now()
		n, err := instindex.Refresh(ctx, fleet, a.store)
		if err != nil {
			return err
		}
		log.InfoContext(ctx, "instance index refreshed", "instances", n, "took", time.Since(start).Round(time.Millisecond).String())
		return nil
	}
	a.jobs.Handle(JobInstancesRefresh, func(ctx context.Context, _ bot.Job) error { return refresh(ctx) })
	// A failed refresh is logged, not returned: the next sweep retries it
	// within SweepInterval, and an EC2 error (a permanent one, say) must
	// not have the whole sweep, revocation reconcile included, retried or
	// dead-lettered.
	a.sweepers = append(a.sweepers, func(ctx context.Context) error {
		if err := refresh(ctx); err != nil {
			log.ErrorContext(ctx, "instance index refresh failed; the search serves the last index until the next sweep", "err", err)
		}
		return nil
	})
	if a.cfg.Lambda {
		enqueueStartupRefresh(a, log)
	}
}

// enqueueStartupRefresh asks for a refresh as a Lambda worker starts. A
// cold start costs one queue message and one refresh, which writes nothing
// when the fleet has not changed; the job id names the SweepInterval slot,
// for the logs.
func enqueueStartupRefresh(a *app, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	slot := time.Now().Truncate(SweepInterval).Unix()
	if err := a.queue.Enqueue(ctx, bot.Job{ID: fmt.Sprintf("%s/start/%d", JobInstancesRefresh, slot), Kind: JobInstancesRefresh}); err != nil {
		log.Warn("cannot enqueue the start-up instance index refresh; the next sweep refreshes it", "err", err)
	}
}
