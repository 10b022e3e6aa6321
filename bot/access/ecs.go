package access

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// ECSSelector says which tasks an ecs-exec profile may target: tasks of
// Cluster that match every part given (a service in Services, a task
// definition family in Families, all of Tags); Containers, when set, are
// the only containers a grant may open a shell in.
type ECSSelector struct {
	Cluster    string            `json:"cluster,omitempty" yaml:"cluster"` // name or ARN
	Services   []string          `json:"services,omitempty" yaml:"services"`
	Families   []string          `json:"families,omitempty" yaml:"families"`
	Tags       map[string]string `json:"tags,omitempty" yaml:"tags"`
	Containers []string          `json:"containers,omitempty" yaml:"containers"`
}

// ClusterName is the cluster's short name (the last part of an ARN).
func (sel ECSSelector) ClusterName() string {
	return ClusterName(sel.Cluster)
}

// ClusterName returns the short name of a cluster given by name or ARN.
func ClusterName(cluster string) string {
	if i := strings.LastIndex(cluster, "cluster/"); i >= 0 && strings.HasPrefix(cluster, "arn:") {
		return cluster[i+len("cluster/"):]
	}
	return cluster
}

// Selects reports whether the selector allows task t (its service, family
// and tags; the cluster is checked by the caller, who looked t up in it).
func (sel ECSSelector) Selects(t ECSTask) bool {
	if len(sel.Services) > 0 && !slices.Contains(sel.Services, t.Service) {
		return false
	}
	if len(sel.Families) > 0 && !slices.Contains(sel.Families, t.Family) {
		return false
	}
	for k, v := range sel.Tags {
		if got, ok := t.Tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Describe says what the selector needs, for refusals.
func (sel ECSSelector) Describe() string {
	parts := []string{"cluster " + sel.ClusterName()}
	if len(sel.Services) > 0 {
		parts = append(parts, "services "+strings.Join(sel.Services, ", "))
	}
	if len(sel.Families) > 0 {
		parts = append(parts, "task families "+strings.Join(sel.Families, ", "))
	}
	if len(sel.Tags) > 0 {
		keys := make([]string, 0, len(sel.Tags))
		for k := range sel.Tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var tags []string
		for _, k := range keys {
			tags = append(tags, k+"="+sel.Tags[k])
		}
		parts = append(parts, "tags "+strings.Join(tags, ", "))
	}
	return "needs " + strings.Join(parts, " and ")
}

// ECSTarget is what an ecs-exec request was approved for: a service (any
// of its tasks, including those that replace the current ones during the
// window) or one task, in one cluster.
type ECSTarget struct {
	// Cluster is the cluster's short name; ClusterARN its ARN as ECS
	// reported it.
	Cluster    string `json:"cluster"`
	ClusterARN string `json:"cluster_arn,omitempty"`
	// Service names the service. For a service grant every task of the
	// service is reachable; for a task grant it is the task's service,
	// if any, for rules and messages.
	Service string `json:"service,omitempty"`
	// Task is the task id of a task grant. For a service grant it is a
	// task that was running when the request was made, for the command
	// given to the requester.
	Task string `json:"task"`
	// ByTask says the grant is for Task alone.
	ByTask bool `json:"by_task,omitempty"`
	// Container is the container the command opens a shell in (the first
	// allowed one of the task); Containers are those the grant allows
	// (empty: any container of the matching tasks).
	Container  string   `json:"container,omitempty"`
	Containers []string `json:"containers,omitempty"`
	// Tags are the selector's tags, required of every task the grant
	// reaches.
	Tags map[string]string `json:"tags,omitempty"`
	// Env is the task's Env tag, "" when it has none.
	Env string `json:"env,omitempty"`
}

// Describe names the target in messages: "service web in cluster staging"
// or "task 0123… in cluster staging".
func (t *ECSTarget) Describe() string {
	if t.ByTask {
		return fmt.Sprintf("task %s in cluster %s", t.Task, t.Cluster)
	}
	return fmt.Sprintf("service %s in cluster %s", t.Service, t.Cluster)
}

// ExecCommand is the `aws ecs execute-command` line that opens a shell in
// the target.
func (t *ECSTarget) ExecCommand() string {
	cmd := "aws ecs execute-command --cluster " + t.Cluster + " --task " + t.Task
	if t.Container != "" {
		cmd += " --container " + t.Container
	}
	return cmd + ` --interactive --command "/bin/sh"`
}

// ECSTask is what tokken needs to know of a running ECS task.
type ECSTask struct {
	ID         string // the task id (last part of the ARN)
	ARN        string
	ClusterARN string
	Service    string // from the task's group "service:<name>", "" for standalone tasks
	Family     string // task definition family
	LastStatus string // RUNNING, STOPPED, ...
	// EnableExecuteCommand is the task's enableExecuteCommand flag.
	EnableExecuteCommand bool
	// Containers are the task's containers with the state of their
	// ExecuteCommandAgent.
	Containers []ECSContainer
	Tags       map[string]string
}

// ECSContainer is one container of a task.
type ECSContainer struct {
	Name      string
	RuntimeID string
	// ExecAgent is the status of the ExecuteCommandAgent managed agent
	// ("RUNNING" when ECS Exec can reach the container, "" when absent).
	ExecAgent string
}

// ECSService is what tokken needs to know of an ECS service.
type ECSService struct {
	Name       string
	ClusterARN string
	// EnableExecuteCommand is the service's flag, given to the tasks it
	// starts.
	EnableExecuteCommand bool
	// ManagedTags is the service's enableECSManagedTags: its tasks carry
	// the aws:ecs:serviceName tag that a service grant's session policy
	// requires, so tasks started during the window stay reachable.
	ManagedTags bool
	// Tasks are the service's RUNNING tasks.
	Tasks []ECSTask
}

// ECSInventory looks tasks and services up in ECS (ListTasks,
// DescribeTasks, DescribeServices). A service or task that does not exist
// is found=false, not an error.
type ECSInventory interface {
	Service(ctx context.Context, cluster, name string) (svc ECSService, found bool, err error)
	Task(ctx context.Context, cluster, id string) (task ECSTask, found bool, err error)
}

var ecsNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`) })

// maxECSName is ECS's limit on cluster and service names.
const maxECSName = 255

// ValidECSTaskID reports whether s is an ECS task id (32 lower-case hex
// digits).
func ValidECSTaskID(s string) bool { return len(s) == 32 && strings.Trim(s, "0123456789abcdef") == "" }

// ValidECSName reports whether s can be an ECS cluster or service name.
func ValidECSName(s string) bool { return len(s) <= maxECSName && ecsNameRE().MatchString(s) }

// The fixes a refusal names.
const (
	fixExecFlag = "turn on ECS Exec for the service (`aws ecs update-service --enable-execute-command --force-new-deployment`) " +
		"and give the task role the `ssmmessages:CreateControlChannel`, `CreateDataChannel`, `OpenControlChannel` and `OpenDataChannel` permissions"
	fixAgent       = "the ExecuteCommandAgent of its containers is not RUNNING: check the task role's `ssmmessages:*` permissions and the platform version (1.4.0 or later on Fargate)"
	fixManagedTags = "a grant for a whole service needs its tasks tagged with the service name: turn on managed tags " +
		"(`aws ecs update-service --enable-ecs-managed-tags --propagate-tags SERVICE --force-new-deployment`), or ask for one task by its id"
)

// splitECSTarget takes the target (a service name or task id) off the front
// of a one-line request's reason: `/access staging-exec 30m web why…`.
func splitECSTarget(reason string) (target, rest string) {
	f := strings.Fields(reason)
	if len(f) == 0 {
		return "", ""
	}
	return f[0], strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(reason), f[0]))
}

// ecsTarget checks ref (a service name or task id) against profile p and
// ECS: the task exists, is RUNNING, has ECS Exec on and matches the
// profile; for a service, that it has such a task and managed tags on.
// Refusals are *ErrBadTarget naming the fix.
func (s *Service) ecsTarget(ctx context.Context, p Profile, ref string) (*ECSTarget, error) {
	sel := p.ECS
	cluster := sel.ClusterName()
	bad := func(format string, args ...any) error {
		return &ErrBadTarget{Profile: p.Name, Why: fmt.Sprintf(format, args...)}
	}
	if ref == "" {
		return nil, bad("name the service or the task id to open a shell in, e.g. `/access %s 30m <service> <reason>`", p.Name)
	}
	if s.ecs == nil {
		return nil, bad("tokken cannot look up ECS tasks here (no ECS client is configured)")
	}
	t := &ECSTarget{Cluster: cluster, Containers: slices.Clone(sel.Containers), Tags: sel.Tags}
	var task ECSTask
	switch {
	case ValidECSTaskID(strings.ToLower(ref)):
		id := strings.ToLower(ref)
		found, ok, err := s.ecs.Task(ctx, sel.Cluster, id)
		if err != nil {
			return nil, fmt.Errorf("look up task %s: %w", id, err)
		}
		if !ok {
			return nil, bad("there is no task %s in cluster %s", id, cluster)
		}
		task = found
		t.ByTask, t.Task, t.Service = true, task.ID, task.Service
	case ValidECSName(ref):
		if len(sel.Services) > 0 && !slices.Contains(sel.Services, ref) {
			return nil, bad("service %s is not in this profile (%s)", ref, sel.Describe())
		}
		svc, ok, err := s.ecs.Service(ctx, sel.Cluster, ref)
		if err != nil {
			return nil, fmt.Errorf("look up service %s: %w", ref, err)
		}
		if !ok {
			return nil, bad("there is no service %s in cluster %s", ref, cluster)
		}
		if !svc.EnableExecuteCommand {
			return nil, bad("service %s has ECS Exec turned off (enableExecuteCommand is false): %s", ref, fixExecFlag)
		}
		if !svc.ManagedTags {
			return nil, bad("service %s: %s", ref, fixManagedTags)
		}
		i := slices.IndexFunc(svc.Tasks, func(k ECSTask) bool { return k.LastStatus == "RUNNING" && k.EnableExecuteCommand })
		if i < 0 {
			return nil, bad("service %s has no RUNNING task with ECS Exec on: wait for its deployment, or %s", ref, fixExecFlag)
		}
		task = svc.Tasks[i]
		t.Task, t.Service = task.ID, ref
	default:
		return nil, bad("%q is neither a service name nor a task id (32 hex digits)", ref)
	}
	t.ClusterARN = task.ClusterARN
	t.Env = task.Tags["Env"]
	switch {
	case task.LastStatus != "RUNNING":
		return nil, bad("task %s is %s, not RUNNING: ask for a running task, or for its service by name", task.ID, strings.ToLower(task.LastStatus))
	case !task.EnableExecuteCommand:
		return nil, bad("task %s has ECS Exec turned off (enableExecuteCommand is false): %s", task.ID, fixExecFlag)
	case !sel.Selects(task):
		return nil, bad("task %s (service %q, family %q) is not in this profile (%s)", task.ID, task.Service, task.Family, sel.Describe())
	}
	// The command opens the shell in the first allowed container whose
	// ECS Exec agent runs (a sidecar without the agent is skipped).
	allowed := 0
	for _, c := range task.Containers {
		if len(t.Containers) > 0 && !slices.Contains(t.Containers, c.Name) {
			continue
		}
		allowed++
		if c.ExecAgent == "RUNNING" && t.Container == "" {
			t.Container = c.Name
		}
	}
	switch {
	case allowed == 0:
		return nil, bad("task %s has none of the containers this profile allows (%s)", task.ID, strings.Join(t.Containers, ", "))
	case t.Container == "":
		return nil, bad("task %s: %s", task.ID, fixAgent)
	}
	return t, nil
}

// ecsStatements are the session policy of an ecs-exec grant (see
// SessionPolicy): ecs:ExecuteCommand on the approved cluster and on its
// tasks that the grant reaches (the one task of a task grant; for a service
// grant, every task carrying the service's managed tag
// aws:ecs:serviceName, so a task replaced by a deployment stays
// reachable), only in the allowed containers (ecs:container-name) and only
// on tasks with the profile's tags (aws:ResourceTag/…); and the read-only
// calls `aws ecs execute-command` and finding a task need. ExecuteCommand
// authorizes two resources, the cluster and the task: both must be
// allowed, and the conditions sit on the task's statement because only
// cluster and task tags are evaluated.
func ecsStatements(spec GrantSpec, partition string) ([]statement, error) {
	t := spec.ECS
	if t == nil {
		return nil, fmt.Errorf("session policy: ecs-exec grant without a target")
	}
	if !ValidECSName(t.Cluster) || (t.Task != "" && !ValidECSTaskID(t.Task)) || (!t.ByTask && !ValidECSName(t.Service)) {
		return nil, fmt.Errorf("session policy: bad ECS target %s", t.Describe())
	}
	region, account := "*", "*"
	if f := strings.Split(t.ClusterARN, ":"); len(f) == 6 && f[0] == "arn" && f[5] == "cluster/"+t.Cluster {
		partition, region, account = f[1], f[3], f[4]
	}
	arn := func(res string) string { return fmt.Sprintf("arn:%s:ecs:%s:%s:%s", partition, region, account, res) }
	task := arn("task/" + t.Cluster + "/*")
	cond := map[string]string{}
	if t.ByTask {
		task = arn("task/" + t.Cluster + "/" + t.Task)
	} else {
		cond["aws:ResourceTag/aws:ecs:serviceName"] = t.Service
	}
	for k, v := range t.Tags {
		cond["aws:ResourceTag/"+k] = v
	}
	st := []statement{{Sid: "ExecCluster", Effect: "Allow", Action: "ecs:ExecuteCommand", Resource: arn("cluster/" + t.Cluster)}}
	containers := t.Containers
	if len(containers) == 0 {
		containers = []string{""}
	}
	for i, c := range containers {
		s := statement{Sid: fmt.Sprintf("ExecTask%d", i), Effect: "Allow", Action: "ecs:ExecuteCommand", Resource: task}
		cc := map[string]string{}
		for k, v := range cond {
			cc[k] = v
		}
		if c != "" {
			cc["ecs:container-name"] = c
		}
		if len(cc) > 0 {
			s.Condition = map[string]map[string]string{"StringEquals": cc}
		}
		st = append(st, s)
	}
	st = append(st, statement{Sid: "Read", Effect: "Allow", Action: []string{
		"ecs:DescribeTasks", "ecs:ListTasks", "ecs:DescribeServices", "ecs:DescribeClusters",
	}, Resource: "*"})
	return st, nil
}
