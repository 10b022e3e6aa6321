//go:build !ingress

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/bot/release"
	"github.com/tokken/tokken/infra/awsconfig"
	"github.com/tokken/tokken/infra/awsgrant"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/infra/codepipe"
	"github.com/tokken/tokken/infra/config"
	"github.com/tokken/tokken/infra/ec2fleet"
	"github.com/tokken/tokken/infra/ecsfleet"
	"github.com/tokken/tokken/infra/identitycenter"
	"github.com/tokken/tokken/infra/schedtimer"
	"github.com/tokken/tokken/policies"
)

// The full build: everything tokken runs, `serve`, `invoke`, the CLI and
// both Lambda functions (the WorkerFunction deploys it). This file holds
// the AWS clients only the worker's work calls: granting and revoking
// (STS, IAM, SSM), EC2, ECS, CodePipeline and EventBridge Scheduler, and
// what only a local tokken uses: the embedded bbolt store. The Lambda
// ingress build (-tags ingress, link_ingress.go) links none of them.

// ingressBuild is false: this build runs every role.
const ingressBuild = false

// openBolt opens the embedded store of TOKKEN_STORE=bolt:<path>
// (infra/boltstore).
func openBolt(path string, log *slog.Logger) (bot.Store, error) {
	return boltstore.Open(path, boltstore.WithLogger(log))
}

// newGranter issues and ends access (infra/awsgrant).
func newGranter(c aws.Config, federationURL, boundary string, log *slog.Logger) access.Granter {
	return awsgrant.New(c, awsgrant.Options{FederationURL: federationURL, Boundary: boundary, Logger: log})
}

// newEC2 is tokken's view of EC2 (infra/ec2fleet).
func newEC2(c aws.Config) ec2Fleet { return ec2fleet.New(c) }

// newECS is tokken's view of ECS (infra/ecsfleet).
func newECS(c aws.Config) ecsFleet { return ecsfleet.New(ecs.NewFromConfig(c)) }

// newIdentityCenter grants through IAM Identity Center
// (infra/identitycenter).
func newIdentityCenter(c aws.Config, idc config.IdentityCenter) access.IdentityCenter {
	return identitycenter.NewFromConfig(c, identitycenter.Options{
		InstanceARN: idc.InstanceARN, IdentityStoreID: idc.IdentityStoreID, PollInterval: idc.PollInterval,
	})
}

// newCodePipeline decides release approvals (infra/codepipe).
func newCodePipeline(c aws.Config) release.CodePipeline { return codepipe.New(c) }

// newSchedulerTimers is the Lambda worker's timers: EventBridge Scheduler
// schedules that put their job on the queue (infra/schedtimer).
func (a *app) newSchedulerTimers(c aws.Config) (bot.Timers, error) {
	return schedtimer.New(scheduler.NewFromConfig(c), schedtimer.Config{
		GroupName: a.cfg.SchedulerGroup, QueueARN: a.cfg.QueueARN, RoleARN: a.cfg.SchedulerRoleARN,
		DLQARN: a.cfg.TimerDeadLetterARN, Queue: a.queue,
	})
}

// roleChecker looks roles up for `tokken policy check --aws` with the AWS
// SDK's usual configuration, requiring TOKKEN_GRANT_BOUNDARY_ARN (or the
// default boundary) exactly as the worker does.
func roleChecker(e env) policies.RoleChecker {
	var g *awsgrant.Granter
	return func(ctx context.Context, roleARN string) error {
		if g == nil {
			cfg, err := awsconfig.Load(ctx)
			if err != nil {
				return fmt.Errorf("AWS configuration: %w", err)
			}
			g = awsgrant.New(cfg, awsgrant.Options{Boundary: e.getenv("TOKKEN_GRANT_BOUNDARY_ARN"),
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		}
		return g.CheckRole(ctx, roleARN)
	}
}

// permissionSetChecker looks permission sets up for `tokken policy check
// --aws` in IAM Identity Center, with the AWS SDK's usual configuration and
// the instance of TOKKEN_IDC_INSTANCE_ARN (discovered when it is not
// given), as the worker does.
func permissionSetChecker(c config.IdentityCenter) policies.PermissionSetChecker {
	var cl *identitycenter.Client
	return func(ctx context.Context, nameOrARN string) (access.PermissionSet, error) {
		if cl == nil {
			cfg, err := awsconfig.Load(ctx)
			if err != nil {
				return access.PermissionSet{}, fmt.Errorf("AWS configuration: %w", err)
			}
			cl = identitycenter.NewFromConfig(cfg, identitycenter.Options{InstanceARN: c.InstanceARN, IdentityStoreID: c.IdentityStoreID})
		}
		return cl.PermissionSet(ctx, nameOrARN)
	}
}
