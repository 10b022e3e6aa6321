package main

import (
	"context"
	"time"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/ecsindex"
)

// registerECSIndex keeps the ECS index (infra/ecsindex) of the clusters the
// ecs-exec profiles name fresh where the role runs jobs: a refresh on every
// reconcile sweep, as registerInstances does for instances. The ingress
// only reads it (the access modal's ECS selects) and needs no ECS
// permission. Without ecs-exec profiles or an AWS configuration nothing is
// registered.
func registerECSIndex(a *app) {
	if !a.cfg.Role.RunsJobs() || a.policies == nil {
		return
	}
	clusters := ecsClusters(a.policies.Profiles())
	if len(clusters) == 0 {
		return
	}
	log := a.log.With("feature", "ecs-index")
	awsCfg, err := a.awsConfig(context.Background())
	if err != nil {
		log.Warn("the ECS index is not refreshed: the access modal's ECS selects offer nothing; the one-line command still works", "err", err)
		return
	}
	fleet := newECS(awsCfg)
	// A failed refresh is logged, not returned, so that the sweep (and the
	// revocation reconcile in it) is not retried for it.
	a.sweepers = append(a.sweepers, func(ctx context.Context) error {
		start := time.Now()
		n, err := ecsindex.Refresh(ctx, fleet, a.store, clusters, time.Now())
		if err != nil {
			log.ErrorContext(ctx, "ECS index refresh failed; the select serves the last index until the next sweep", "err", err)
			return nil
		}
		log.InfoContext(ctx, "ECS index refreshed", "targets", n, "took", time.Since(start).Round(time.Millisecond).String())
		return nil
	})
}

// ecsClusters lists the clusters of the ecs-exec profiles, once each.
func ecsClusters(ps []access.Profile) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range ps {
		if p.Kind == access.KindECSExec && !seen[p.ECS.Cluster] {
			seen[p.ECS.Cluster] = true
			out = append(out, p.ECS.Cluster)
		}
	}
	return out
}
