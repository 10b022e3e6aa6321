package accessui

import (
	"context"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/handlers/mrkdwn"
)

// ecsCommands is the part of an ecs-exec grant's DM that opens the shell:
// the exact `aws ecs execute-command` line, and for a service grant how to
// find the service's current tasks (a deployment replaces them during the
// window; the grant reaches the new ones too). Cluster, service, task and
// container names were checked to be plain ECS names.
func ecsCommands(t *access.ECSTarget) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n*Shell* (%s; needs the Session Manager plugin for the AWS CLI):\n```\n%s\n", t.Describe(), t.ExecCommand())
	if !t.ByTask {
		fmt.Fprintf(&b, "# if that task was replaced, list the service's running tasks:\naws ecs list-tasks --cluster %s --service-name %s --desired-status RUNNING\n",
			t.Cluster, t.Service)
	}
	b.WriteString("```")
	return b.String()
}

// ecsTargetLine shows approvers what an ecs-exec request reaches: the
// service (every task of it, including replacements) or the one task, and
// the containers.
func ecsTargetLine(t *access.ECSTarget) string {
	var b strings.Builder
	if t.ByTask {
		fmt.Fprintf(&b, "*ECS task* `%s` in cluster `%s`", t.Task, t.Cluster)
		if t.Service != "" {
			fmt.Fprintf(&b, " (service `%s`)", t.Service)
		}
	} else {
		fmt.Fprintf(&b, "*ECS service* `%s` in cluster `%s` (all its tasks)", t.Service, t.Cluster)
	}
	if len(t.Containers) > 0 {
		fmt.Fprintf(&b, ", containers `%s`", strings.Join(t.Containers, "`, `"))
	}
	return b.String()
}

// blockECSTarget is the modal's ECS select: a service or a running task of
// the chosen ecs-exec profile's cluster.
const blockECSTarget = "ecs_target"

// ECSSearcher answers the ECS select from the index the worker keeps
// (infra/ecsindex): the services, then the running tasks, of cluster that
// match query, at most limit in all.
type ECSSearcher interface {
	SearchECS(ctx context.Context, cluster, query string, limit int) ([]access.ECSService, []access.ECSTask, error)
}

// ecsTargetBlock is the modal's ECS select, searched as the user types.
func ecsTargetBlock() *slack.InputBlock {
	minQuery := 0
	sel := slack.NewOptionsSelectBlockElement(slack.OptTypeExternal, plain("Search services and running tasks"), actionID(blockECSTarget))
	sel.MinQueryLength = &minQuery
	b := slack.NewInputBlock(blockECSTarget, plain("ECS service or task"),
		plain("Needed for ecs-exec profiles: a service (all its tasks, including replacements) or one task."), sel)
	b.Optional = true
	return b
}

// parseECSTarget reads the ECS select of a submitted modal.
func parseECSTarget(st *slack.ViewState, f *requestForm, errs map[string]string) {
	v := stateValue(st, blockECSTarget).SelectedOption.Value
	if v != "" && !access.ValidECSName(v) && !access.ValidECSTaskID(v) {
		errs[blockECSTarget] = fmt.Sprintf("%q is neither a service name nor a task id.", mrkdwn.Truncate(v, 40))
		return
	}
	f.ECSTarget = v
}

// checkECSTarget checks the ECS select against the chosen profile.
func checkECSTarget(f requestForm, p access.Profile, errs map[string]string) {
	switch {
	case p.Kind == access.KindECSExec && f.ECSTarget == "" && errs[blockECSTarget] == "":
		errs[blockECSTarget] = "Pick the service or task you need a shell in."
	case p.Kind != access.KindECSExec && f.ECSTarget != "":
		errs[blockECSTarget] = p.Name + " is not an ecs-exec profile: clear this field."
	}
}

// ecsOptions answers the ECS select: services and running tasks of the
// chosen profile's cluster, from the index. Nothing until an ecs-exec
// profile is chosen. What is submitted is checked against ECS and the
// profile by the worker, so a stale or unsuitable entry grants nothing.
func (f *Feature) ecsOptions(ctx context.Context, ic slack.InteractionCallback) (any, error) {
	resp := &slack.OptionsResponse{Options: []*slack.OptionBlockObject{}}
	p, ok := f.cat.Profile(stateValue(ic.View.State, blockProfile).SelectedOption.Value)
	if !ok || p.Kind != access.KindECSExec || f.ecs == nil {
		return resp, nil
	}
	svcs, tasks, err := f.ecs.SearchECS(ctx, p.ECS.Cluster, strings.TrimSpace(ic.Value), MaxOptions)
	if err != nil {
		return nil, fmt.Errorf("search ECS targets: %w", err)
	}
	off := func(exec bool) string {
		if exec {
			return ""
		}
		return " — ECS Exec off"
	}
	for _, v := range svcs {
		resp.Options = append(resp.Options, option(v.Name, "service "+v.Name+" (all its tasks)"+off(v.EnableExecuteCommand)))
	}
	for _, t := range tasks {
		label := "task " + t.ID
		if t.Service != "" {
			label += " of " + t.Service
		}
		resp.Options = append(resp.Options, option(t.ID, label+off(t.EnableExecuteCommand)))
	}
	return resp, nil
}
