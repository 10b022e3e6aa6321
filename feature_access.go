package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/accessui"
	"github.com/tokken/tokken/handlers/mrkdwn"
	"github.com/tokken/tokken/infra/awsconfig"
	"github.com/tokken/tokken/infra/ecsindex"
	"github.com/tokken/tokken/infra/instindex"
)

// registerAccess wires access requests (/access): the command, modal,
// buttons and instance search on the router; the access Service's jobs,
// the submit job and its reconcile sweep on the worker. Grants go through
// awsgrant (STS, SSM, IAM) and instances through ec2fleet, both from the
// AWS configuration; the audit trail goes to the store, the JSON log and
// TOKKEN_AUDIT_CHANNEL. At ingress the Service only reads and writes the
// store, asks the policy set and talks to Slack: issuing and revoking are
// jobs, new requests are submitted by a job because checking instances
// needs EC2, and the instance search reads the store's instance index,
// which the worker refreshes (feature_instances.go).
//
// When the feature cannot run in this process (no bot token, or no AWS
// region on Lambda), /access says why and the rest of tokken runs; any
// other error fails start-up. A local tokken without an AWS region takes
// requests and approvals, and says at activation that granting needs AWS.
func registerAccess(a *app) error {
	log := a.log.With("feature", "access")
	f, err := newAccessFeature(context.Background(), a, log)
	var unavailable *unavailableError
	if errors.As(err, &unavailable) {
		log.Error("access requests are unavailable", "err", err)
		reason := err.Error()
		a.router.HandleCommand("/access", func(_ context.Context, cmd slack.SlashCommand) (*slack.Msg, error) {
			if c, err := access.ParseCommand(cmd.Text); err == nil && c.Verb == access.VerbHelp {
				return &slack.Msg{Text: mrkdwn.Escape(access.Help)}, nil
			}
			return &slack.Msg{Text: "Access requests are unavailable in this tokken: " + mrkdwn.Escape(reason)}, nil
		})
		return nil
	}
	if err != nil {
		return fmt.Errorf("access feature: %w", err)
	}
	f.Register(a.router, a.jobs)
	a.sweepers = append(a.sweepers, f.Service().Sweep)
	a.accessUI = f
	return nil
}

// newAccessFeature builds the access feature from the app's parts.
func newAccessFeature(ctx context.Context, a *app, log *slog.Logger) (*accessui.Feature, error) {
	if a.slack == nil {
		return nil, &unavailableError{reason: "SLACK_BOT_TOKEN is not set: requests cannot be posted to approvers"}
	}
	cfg := a.cfg.Access
	var (
		granter   access.Granter
		inventory access.Inventory
		ecsInv    access.ECSInventory
		idc       access.IdentityCenter
	)
	awsCfg, err := a.featureAWS(ctx, "STS, SSM and EC2 grant and end access")
	var unavailable *unavailableError
	switch {
	case errors.As(err, &unavailable) && !a.cfg.Lambda:
		// A local tokken tried without an AWS account: requests, approvals
		// and the rest work; granting says what is missing.
		log.Warn("no AWS region: access can be requested and approved, but granting it fails until AWS_REGION and AWS credentials are set", "err", err)
		granter, inventory = noAWS{}, noAWS{}
	case err != nil:
		return nil, err
	default:
		granter = newGranter(awsCfg, a.cfg.FederationURL, cfg.GrantBoundaryARN, log)
		inventory = newEC2(awsCfg)
		ecsInv = newECS(awsCfg)
		idc = identityCenter(a, awsCfg, log)
	}
	if cfg.AuditChannel == "" {
		log.Warn("TOKKEN_AUDIT_CHANNEL is not set: the audit trail is in the store and the log only; break-glass is announced in the approver channel")
	}
	// Every grant's session policy fences tokken's own resources; on Lambda
	// that includes this function, which template.yaml cannot name in its
	// own environment.
	partition := awsconfig.Partition(awsCfg.Region)
	protected := slices.Clone(cfg.ProtectedARNs)
	if a.cfg.LambdaFunction != "" {
		protected = append(protected, fmt.Sprintf("arn:%s:lambda:%s:*:function:%s", partition, awsCfg.Region, a.cfg.LambdaFunction))
	}
	if len(protected) == 0 {
		log.Warn("TOKKEN_PROTECTED_ARNS is not set: grants are not fenced off tokken's own resources (template.yaml sets it on Lambda)")
	}
	return accessui.New(accessui.Deps{
		Store: a.store, Queue: a.queue, Timers: a.timers,
		Authorizer: a.policies, Catalogue: a.policies, Directory: a.directory,
		Listing:   a.directory.Cached(),
		Granter:   granter,
		Partition: partition, Protected: protected,
		Inventory: inventory, Search: instindex.Index{Store: a.store},
		ECS: ecsInv, ECSSearch: ecsindex.Index{Store: a.store},
		IdentityCenter: idc, PortalURL: cfg.IdentityCenter.PortalURL, IdentityUsers: a.policies,
		Slack:        a.slack,
		Auditor:      a.audit,
		AuditChannel: cfg.AuditChannel, OpsChannel: a.cfg.OpsChannel,
		Location: a.cfg.Location, Region: awsCfg.Region,
		Logger: a.log, // accessui adds "feature":"access" itself
	})
}

// identityCenter is the Identity Center client of a worker that may grant
// identity-center profiles (some profile is of that kind, or a
// TOKKEN_IDC_* variable is set), nil otherwise: the ingress never calls
// Identity Center, and a tokken without such profiles has no use for it.
func identityCenter(a *app, awsCfg aws.Config, log *slog.Logger) access.IdentityCenter {
	c := a.cfg.Access.IdentityCenter
	if !a.cfg.Role.RunsJobs() {
		return nil
	}
	used := c.Configured() || slices.ContainsFunc(a.policies.Profiles(), func(p access.Profile) bool {
		return p.Kind == access.KindIdentityCenter
	})
	if !used {
		return nil
	}
	if c.PortalURL == "" {
		log.Warn("TOKKEN_IDC_PORTAL_URL is not set: identity-center grants are made, but the requester's DM cannot link to the AWS access portal")
	}
	return newIdentityCenter(awsCfg, c)
}

// msgNoAWS says what a tokken without AWS configuration cannot do, and how
// to give it one.
const msgNoAWS = "this tokken has no AWS configuration: set AWS_REGION and AWS credentials " +
	"(AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and restart it"

// noAWS is the Granter and Inventory of a local tokken without an AWS
// region: requests and approvals run as usual; issuing fails at once with
// msgNoAWS, which the request's failure shows the requester. Nothing is
// ever issued, so there is nothing to revoke or terminate.
type noAWS struct{}

var (
	_ access.Granter   = noAWS{}
	_ access.Inventory = noAWS{}
)

func (noAWS) Issue(context.Context, access.GrantSpec) (access.Credentials, error) {
	return access.Credentials{}, bot.Permanent(errors.New(msgNoAWS))
}

// CheckRole lets every role through: without AWS nothing is granted (Issue
// refuses), so there is no boundary to check yet.
func (noAWS) CheckRole(context.Context, string) error { return nil }

func (noAWS) Revoke(context.Context, access.Grant) error { return nil }

func (noAWS) TerminateSessions(context.Context, access.Grant) ([]access.Session, error) {
	return nil, nil
}

// Instances refuses with an answer for the requester: instances are
// checked against EC2 before a request is filed.
func (noAWS) Instances(context.Context, []string) ([]bot.Target, error) {
	return nil, &access.CommandError{Msg: "Instances cannot be checked: " + msgNoAWS + ". Profiles without instances can be requested without AWS."}
}
