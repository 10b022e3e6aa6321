//go:build ingress

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/bot/domainjoin"
	"github.com/tokken/tokken/bot/release"
	"github.com/tokken/tokken/infra/config"
	"github.com/tokken/tokken/policies"
)

// The Lambda ingress build (`go build -tags ingress`, the Makefile's
// build-IngressFunction): the IngressFunction's artifact, and nothing of
// the worker's. The ingress verifies, records, answers and enqueues: it
// reads its Slack secret from Secrets Manager, reads and writes DynamoDB,
// sends to SQS and talks to Slack; the access modal's instance and ECS
// selects read the indexes the worker keeps in the store. Granting, EC2,
// ECS, CodePipeline and timers are the worker's, reached through jobs, so
// their SDK clients are left out: their package initialisers alone cost
// a cold start more than the ingress's own work. In their place is
// workerOnly, whose every call fails saying so; buildApp runs this build
// as the Lambda ingress only (ingressBuild), where none of them is called.
// The embedded bbolt store, a local tokken's, is left out too: on Lambda
// the store is always DynamoDB (TOKKEN_STORE=dynamodb:<table>). A test
// (TestIngressBuildLinks) keeps worker-only SDK services and bbolt out.

// ingressBuild is true: this build runs only as the Lambda ingress.
const ingressBuild = true

// openBolt refuses: the embedded store is a local tokken's, and the Lambda
// ingress's store is DynamoDB.
func openBolt(string, *slog.Logger) (bot.Store, error) {
	return nil, errors.New("the embedded store is not in the Lambda ingress build (-tags ingress): use TOKKEN_STORE=dynamodb:<table>, or the full build")
}

// errWorkerOnly is what every worker-only call answers in this build.
var errWorkerOnly = errors.New("not in the Lambda ingress build (-tags ingress): the worker does this")

// workerOnly stands for a worker-only AWS client (what names it).
type workerOnly string

func (w workerOnly) err() error { return bot.Permanent(fmt.Errorf("%s: %w", string(w), errWorkerOnly)) }

func newGranter(aws.Config, string, string, *slog.Logger) access.Granter {
	return workerOnly("grant access")
}
func newEC2(aws.Config) ec2Fleet                      { return workerOnly("EC2") }
func newECS(aws.Config) ecsFleet                      { return workerOnlyECS{} }
func newCodePipeline(aws.Config) release.CodePipeline { return workerOnly("CodePipeline") }
func (a *app) newSchedulerTimers(aws.Config) (bot.Timers, error) {
	return noTimers{role: a.cfg.Role}, nil
}

// newIdentityCenter has no client: Identity Center grants are the
// worker's, and the ingress runs no jobs.
func newIdentityCenter(aws.Config, config.IdentityCenter) access.IdentityCenter { return nil }

// permissionSetChecker refuses: `tokken policy check --aws` needs IAM
// Identity Center.
func permissionSetChecker(config.IdentityCenter) policies.PermissionSetChecker {
	return func(context.Context, string) (access.PermissionSet, error) {
		return access.PermissionSet{}, workerOnly("look permission sets up in IAM Identity Center").err()
	}
}

// roleChecker refuses: `tokken policy check --aws` needs IAM.
func roleChecker(env) policies.RoleChecker {
	return func(context.Context, string) error { return workerOnly("check roles in IAM").err() }
}

func (w workerOnly) Issue(context.Context, access.GrantSpec) (access.Credentials, error) {
	return access.Credentials{}, w.err()
}
func (w workerOnly) CheckRole(context.Context, string) error    { return w.err() }
func (w workerOnly) Revoke(context.Context, access.Grant) error { return w.err() }
func (w workerOnly) TerminateSessions(context.Context, access.Grant) ([]access.Session, error) {
	return nil, w.err()
}
func (w workerOnly) Instances(context.Context, []string) ([]bot.Target, error) { return nil, w.err() }
func (w workerOnly) Find(context.Context, string) ([]domainjoin.Instance, error) {
	return nil, w.err()
}
func (w workerOnly) SetTags(context.Context, string, map[string]string) error { return w.err() }
func (w workerOnly) Reboot(context.Context, string) error                     { return w.err() }
func (w workerOnly) List(context.Context) ([]domainjoin.Instance, error)      { return nil, w.err() }
func (w workerOnly) Execution(context.Context, string, string, string, string) (release.Execution, error) {
	return release.Execution{}, w.err()
}
func (w workerOnly) PutApprovalResult(context.Context, release.Result) error { return w.err() }
func (w workerOnly) Outcome(context.Context, string, string, string, string, string) (release.Outcome, error) {
	return release.Outcome{}, w.err()
}
func (w workerOnly) Start(context.Context, string, string) (string, error) { return "", w.err() }

// workerOnlyECS stands for the ECS client (its List differs from EC2's).
type workerOnlyECS struct{}

func (workerOnlyECS) Service(context.Context, string, string) (access.ECSService, bool, error) {
	return access.ECSService{}, false, workerOnly("ECS").err()
}
func (workerOnlyECS) Task(context.Context, string, string) (access.ECSTask, bool, error) {
	return access.ECSTask{}, false, workerOnly("ECS").err()
}
func (workerOnlyECS) List(context.Context, string) ([]access.ECSService, []access.ECSTask, error) {
	return nil, nil, workerOnly("ECS").err()
}
