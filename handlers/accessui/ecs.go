package accessui

import (
	"fmt"
	"strings"

	"github.com/tokken/tokken/bot/access"
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
