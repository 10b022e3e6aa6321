// Package ecsfleet looks ECS services and tasks up for ecs-exec requests
// (access.ECSInventory): DescribeServices, ListTasks and DescribeTasks,
// read by the worker with its own role.
package ecsfleet

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/tokken/tokken/bot/access"
)

// API is the part of the ECS client Fleet uses.
type API interface {
	ListClusters(ctx context.Context, in *ecs.ListClustersInput, opts ...func(*ecs.Options)) (*ecs.ListClustersOutput, error)
	ListServices(ctx context.Context, in *ecs.ListServicesInput, opts ...func(*ecs.Options)) (*ecs.ListServicesOutput, error)
	DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, opts ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error)
	ListTasks(ctx context.Context, in *ecs.ListTasksInput, opts ...func(*ecs.Options)) (*ecs.ListTasksOutput, error)
	DescribeTasks(ctx context.Context, in *ecs.DescribeTasksInput, opts ...func(*ecs.Options)) (*ecs.DescribeTasksOutput, error)
}

// Fleet implements access.ECSInventory with an ECS client.
type Fleet struct{ api API }

// New returns a Fleet using api (an *ecs.Client).
func New(api API) *Fleet { return &Fleet{api: api} }

// maxDescribeTasks is DescribeTasks' limit on tasks per call.
const maxDescribeTasks = 100

// Service implements access.ECSInventory: the service and its RUNNING
// tasks (with their tags).
func (f *Fleet) Service(ctx context.Context, cluster, name string) (access.ECSService, bool, error) {
	out, err := f.api.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{name}})
	if err != nil {
		return access.ECSService{}, false, fmt.Errorf("describe service %s in %s: %w", name, cluster, err)
	}
	if len(out.Services) == 0 || aws.ToString(out.Services[0].Status) == "INACTIVE" {
		return access.ECSService{}, false, nil
	}
	s := out.Services[0]
	svc := access.ECSService{
		Name: aws.ToString(s.ServiceName), ClusterARN: aws.ToString(s.ClusterArn),
		EnableExecuteCommand: s.EnableExecuteCommand, ManagedTags: s.EnableECSManagedTags,
	}
	var arns []string
	p := ecs.NewListTasksPaginator(f.api, &ecs.ListTasksInput{
		Cluster: aws.String(cluster), ServiceName: aws.String(name), DesiredStatus: ecstypes.DesiredStatusRunning,
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return access.ECSService{}, false, fmt.Errorf("list tasks of %s in %s: %w", name, cluster, err)
		}
		arns = append(arns, page.TaskArns...)
	}
	if svc.Tasks, err = f.describe(ctx, cluster, arns); err != nil {
		return access.ECSService{}, false, err
	}
	return svc, true, nil
}

// Task implements access.ECSInventory.
func (f *Fleet) Task(ctx context.Context, cluster, id string) (access.ECSTask, bool, error) {
	ts, err := f.describe(ctx, cluster, []string{id})
	if err != nil || len(ts) == 0 {
		return access.ECSTask{}, false, err
	}
	return ts[0], true, nil
}

// describe runs DescribeTasks (with tags) on arns, 100 at a time.
func (f *Fleet) describe(ctx context.Context, cluster string, arns []string) ([]access.ECSTask, error) {
	var out []access.ECSTask
	for len(arns) > 0 {
		n := min(len(arns), maxDescribeTasks)
		res, err := f.api.DescribeTasks(ctx, &ecs.DescribeTasksInput{
			Cluster: aws.String(cluster), Tasks: arns[:n], Include: []ecstypes.TaskField{ecstypes.TaskFieldTags},
		})
		if err != nil {
			return nil, fmt.Errorf("describe tasks in %s: %w", cluster, err)
		}
		for _, t := range res.Tasks {
			out = append(out, task(t))
		}
		arns = arns[n:]
	}
	return out, nil
}

// task converts an ECS task.
func task(t ecstypes.Task) access.ECSTask {
	arn := aws.ToString(t.TaskArn)
	out := access.ECSTask{
		ID: arn[strings.LastIndex(arn, "/")+1:], ARN: arn, ClusterARN: aws.ToString(t.ClusterArn),
		LastStatus: aws.ToString(t.LastStatus), EnableExecuteCommand: t.EnableExecuteCommand,
		Tags: map[string]string{},
	}
	if g := aws.ToString(t.Group); strings.HasPrefix(g, "service:") {
		out.Service = strings.TrimPrefix(g, "service:")
	}
	// arn:aws:ecs:region:account:task-definition/family:revision
	if td := aws.ToString(t.TaskDefinitionArn); strings.Contains(td, "task-definition/") {
		fam := td[strings.Index(td, "task-definition/")+len("task-definition/"):]
		if i := strings.LastIndex(fam, ":"); i >= 0 {
			fam = fam[:i]
		}
		out.Family = fam
	}
	for _, c := range t.Containers {
		ct := access.ECSContainer{Name: aws.ToString(c.Name), RuntimeID: aws.ToString(c.RuntimeId)}
		for _, a := range c.ManagedAgents {
			if a.Name == ecstypes.ManagedAgentNameExecuteCommandAgent {
				ct.ExecAgent = aws.ToString(a.LastStatus)
			}
		}
		out.Containers = append(out.Containers, ct)
	}
	for _, tag := range t.Tags {
		out.Tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return out
}

var _ access.ECSInventory = (*Fleet)(nil)

// maxDescribeServices is DescribeServices' limit on services per call.
const maxDescribeServices = 10

// List reads cluster for the ECS index: its services (with their ECS Exec
// and managed-tag flags, without tasks) and its RUNNING tasks.
func (f *Fleet) List(ctx context.Context, cluster string) ([]access.ECSService, []access.ECSTask, error) {
	var names []string
	sp := ecs.NewListServicesPaginator(f.api, &ecs.ListServicesInput{Cluster: aws.String(cluster)})
	for sp.HasMorePages() {
		page, err := sp.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("list services in %s: %w", cluster, err)
		}
		names = append(names, page.ServiceArns...)
	}
	var svcs []access.ECSService
	for len(names) > 0 {
		n := min(len(names), maxDescribeServices)
		out, err := f.api.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: names[:n]})
		if err != nil {
			return nil, nil, fmt.Errorf("describe services in %s: %w", cluster, err)
		}
		for _, s := range out.Services {
			if aws.ToString(s.Status) == "INACTIVE" {
				continue
			}
			svcs = append(svcs, access.ECSService{
				Name: aws.ToString(s.ServiceName), ClusterARN: aws.ToString(s.ClusterArn),
				EnableExecuteCommand: s.EnableExecuteCommand, ManagedTags: s.EnableECSManagedTags,
			})
		}
		names = names[n:]
	}
	var arns []string
	tp := ecs.NewListTasksPaginator(f.api, &ecs.ListTasksInput{Cluster: aws.String(cluster), DesiredStatus: ecstypes.DesiredStatusRunning})
	for tp.HasMorePages() {
		page, err := tp.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("list tasks in %s: %w", cluster, err)
		}
		arns = append(arns, page.TaskArns...)
	}
	tasks, err := f.describe(ctx, cluster, arns)
	if err != nil {
		return nil, nil, err
	}
	return svcs, tasks, nil
}
