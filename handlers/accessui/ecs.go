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

// The modal's ECS selects: a service, and a running task (of that service
// when one is picked), of the chosen ecs-exec profile's cluster. The
// cluster is the profile's own (one per profile), shown as context.
const (
	blockECSService  = "ecs_service"
	blockECSTask     = "ecs_task"
	blockECSClusters = "ecs_clusters"
)

// ECSSearcher answers the ECS selects from the index the worker keeps
// (infra/ecsindex).
type ECSSearcher interface {
	// SearchECSServices returns cluster's services matching query, at most
	// limit.
	SearchECSServices(ctx context.Context, cluster, query string, limit int) ([]access.ECSService, error)
	// SearchECSTasks returns cluster's running tasks of service (any when
	// empty) matching query, at most limit.
	SearchECSTasks(ctx context.Context, cluster, service, query string, limit int) ([]access.ECSTask, error)
}

// ecsBlocks are the modal's ECS fields: which cluster each ecs-exec
// profile reaches, then the service select and the task select, both
// searched as the user types.
func ecsBlocks(choices []Choice) []slack.Block {
	var clusters []string
	for _, c := range choices {
		if c.Profile.Kind == access.KindECSExec {
			clusters = append(clusters, fmt.Sprintf("*%s* → cluster `%s`", mrkdwn.Escape(c.Profile.Name), mrkdwn.Escape(c.Profile.ECS.Cluster)))
		}
	}
	ctxBlock := slack.NewContextBlock(blockECSClusters, slack.NewTextBlockObject(slack.MarkdownType,
		mrkdwn.Truncate("ECS Exec: the cluster comes from the profile. "+strings.Join(clusters, " · "), 2000), false, false))
	minQuery := 0
	svc := slack.NewOptionsSelectBlockElement(slack.OptTypeExternal, plain("Search services"), actionID(blockECSService))
	svc.MinQueryLength = &minQuery
	svcBlock := slack.NewInputBlock(blockECSService, plain("ECS service"),
		plain("For ecs-exec profiles: a service gives a shell in all its tasks, including replacements."), svc)
	svcBlock.Optional = true
	task := slack.NewOptionsSelectBlockElement(slack.OptTypeExternal, plain("Search running tasks"), actionID(blockECSTask))
	task.MinQueryLength = &minQuery
	taskBlock := slack.NewInputBlock(blockECSTask, plain("ECS task"),
		plain("Or one running task only (of the service above, when one is picked)."), task)
	taskBlock.Optional = true
	return []slack.Block{ctxBlock, svcBlock, taskBlock}
}

// parseECSTarget reads the ECS selects of a submitted modal: the task when
// one is picked (a grant for that task alone), else the service.
func parseECSTarget(st *slack.ViewState, f *requestForm, errs map[string]string) {
	svc := stateValue(st, blockECSService).SelectedOption.Value
	task := stateValue(st, blockECSTask).SelectedOption.Value
	if svc != "" && !access.ValidECSName(svc) {
		errs[blockECSService] = fmt.Sprintf("%q is not a service name.", mrkdwn.Truncate(svc, 40))
		svc = ""
	}
	if task != "" && !access.ValidECSTaskID(task) {
		errs[blockECSTask] = fmt.Sprintf("%q is not a task id.", mrkdwn.Truncate(task, 40))
		task = ""
	}
	f.ECSService, f.ECSTarget = svc, svc
	if task != "" {
		f.ECSTarget = task
	}
}

// checkECSTarget checks the ECS selects against the chosen profile.
func checkECSTarget(f requestForm, p access.Profile, errs map[string]string) {
	if errs[blockECSService] != "" || errs[blockECSTask] != "" {
		return
	}
	switch {
	case p.Kind == access.KindECSExec && f.ECSTarget == "":
		errs[blockECSService] = "Pick the service (or below, the task) you need a shell in."
	case p.Kind != access.KindECSExec && f.ECSService != "":
		errs[blockECSService] = p.Name + " is not an ecs-exec profile: clear this field."
	case p.Kind != access.KindECSExec && f.ECSTarget != "":
		errs[blockECSTask] = p.Name + " is not an ecs-exec profile: clear this field."
	}
}

// checkECSTaskOfService refuses a task picked with a service it is not a
// task of (the service was changed after the task was picked), by the
// index the options came from. Without an index the worker's check of the
// task is all there is.
func (f *Feature) checkECSTaskOfService(ctx context.Context, form requestForm, errs map[string]string) error {
	if f.ecs == nil || form.ECSService == "" || form.ECSTarget == form.ECSService || len(errs) > 0 {
		return nil
	}
	p, ok := f.cat.Profile(form.Profile)
	if !ok || p.Kind != access.KindECSExec {
		return nil
	}
	tasks, err := f.ecs.SearchECSTasks(ctx, p.ECS.Cluster, form.ECSService, form.ECSTarget, 1)
	if err != nil {
		return fmt.Errorf("check the ECS task's service: %w", err)
	}
	if len(tasks) == 0 || tasks[0].ID != form.ECSTarget {
		errs[blockECSTask] = fmt.Sprintf("Task %s is not a running task of service %s: pick one of its tasks, or clear the service.",
			form.ECSTarget, form.ECSService)
	}
	return nil
}

// ecsOptions answers the ECS selects from the index: the services of the
// chosen profile's cluster, or its running tasks (of the chosen service,
// if any). Nothing until an ecs-exec profile is chosen. What is submitted
// is checked against ECS and the profile by the worker, so a stale or
// unsuitable entry grants nothing.
func (f *Feature) ecsOptions(ctx context.Context, ic slack.InteractionCallback) (any, error) {
	resp := &slack.OptionsResponse{Options: []*slack.OptionBlockObject{}}
	p, ok := f.cat.Profile(stateValue(ic.View.State, blockProfile).SelectedOption.Value)
	if !ok || p.Kind != access.KindECSExec || f.ecs == nil {
		return resp, nil
	}
	off := func(exec bool) string {
		if exec {
			return ""
		}
		return " — ECS Exec off"
	}
	query := strings.TrimSpace(ic.Value)
	if ic.ActionID == actionID(blockECSService) {
		svcs, err := f.ecs.SearchECSServices(ctx, p.ECS.Cluster, query, MaxOptions)
		if err != nil {
			return nil, fmt.Errorf("search ECS services: %w", err)
		}
		for _, v := range svcs {
			resp.Options = append(resp.Options, option(v.Name, v.Name+" (all its tasks)"+off(v.EnableExecuteCommand)))
		}
		return resp, nil
	}
	service := stateValue(ic.View.State, blockECSService).SelectedOption.Value
	tasks, err := f.ecs.SearchECSTasks(ctx, p.ECS.Cluster, service, query, MaxOptions)
	if err != nil {
		return nil, fmt.Errorf("search ECS tasks: %w", err)
	}
	for _, t := range tasks {
		label := t.ID
		if t.Service != "" {
			label += " of " + t.Service
		}
		resp.Options = append(resp.Options, option(t.ID, label+off(t.EnableExecuteCommand)))
	}
	return resp, nil
}
