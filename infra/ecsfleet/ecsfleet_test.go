package ecsfleet_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/tokken/tokken/infra/ecsfleet"
	"github.com/tokken/tokken/testkit/awsfake"
)

const (
	task1 = "0123456789abcdef0123456789abcdef"
	task2 = "1123456789abcdef0123456789abcdef"
)

func setup(t *testing.T) (*awsfake.Fake, *ecsfleet.Fleet, *ecs.Client) {
	f := awsfake.New(t)
	f.ECS().PutService(awsfake.ECSSvc{Cluster: "staging", Name: "web", EnableExecuteCommand: true, ManagedTags: true})
	f.ECS().PutTask(awsfake.ECSTaskDef{Cluster: "staging", ID: task1, Service: "web", Family: "web-app", LastStatus: "RUNNING",
		EnableExecuteCommand: true, Tags: map[string]string{"Env": "staging"},
		Containers: []awsfake.ECSContainerDef{{Name: "app", RuntimeID: task1 + "-1", ExecAgent: "RUNNING"}, {Name: "envoy", RuntimeID: task1 + "-2"}}})
	f.ECS().PutTask(awsfake.ECSTaskDef{Cluster: "staging", ID: task2, Service: "web", Family: "web-app", LastStatus: "STOPPED"})
	c := ecs.NewFromConfig(f.Config(context.Background()))
	return f, ecsfleet.New(c), c
}

func TestService(t *testing.T) {
	_, fleet, _ := setup(t)
	ctx := context.Background()
	svc, ok, err := fleet.Service(ctx, "staging", "web")
	if err != nil || !ok {
		t.Fatalf("Service = %v, %v", ok, err)
	}
	if !svc.EnableExecuteCommand || !svc.ManagedTags || len(svc.Tasks) != 1 {
		t.Fatalf("service %+v: want exec and managed tags on, the one RUNNING task", svc)
	}
	tk := svc.Tasks[0]
	if tk.ID != task1 || tk.Service != "web" || tk.Family != "web-app" || tk.LastStatus != "RUNNING" || !tk.EnableExecuteCommand ||
		tk.Tags["Env"] != "staging" || tk.Tags["aws:ecs:serviceName"] != "web" || len(tk.Containers) != 2 ||
		tk.Containers[0].ExecAgent != "RUNNING" || tk.Containers[1].ExecAgent != "" || tk.Containers[0].RuntimeID != task1+"-1" {
		t.Errorf("task %+v", tk)
	}
	if _, ok, err := fleet.Service(ctx, "staging", "nosuch"); ok || err != nil {
		t.Errorf("missing service: %v, %v", ok, err)
	}
	var api smithy.APIError
	if _, _, err := fleet.Service(ctx, "nosuch", "web"); !errors.As(err, &api) || api.ErrorCode() != "ClusterNotFoundException" {
		t.Errorf("missing cluster: %v", err)
	}
}

func TestTask(t *testing.T) {
	_, fleet, _ := setup(t)
	ctx := context.Background()
	tk, ok, err := fleet.Task(ctx, "arn:aws:ecs:us-east-1:"+awsfake.AccountID+":cluster/staging", task2)
	if err != nil || !ok || tk.LastStatus != "STOPPED" {
		t.Fatalf("Task = %+v, %v, %v", tk, ok, err)
	}
	if _, ok, err := fleet.Task(ctx, "staging", "9999999999abcdef0123456789abcdef"); ok || err != nil {
		t.Errorf("missing task: %v, %v", ok, err)
	}
}

// TestExecuteCommandOpensSSMSession: ECS Exec through the real ecs client
// opens an SSM session that DescribeSessions lists with ECS's target form
// and TerminateSession ends.
func TestExecuteCommandOpensSSMSession(t *testing.T) {
	f, _, c := setup(t)
	ctx := context.Background()
	out, err := c.ExecuteCommand(ctx, &ecs.ExecuteCommandInput{Cluster: aws.String("staging"), Task: aws.String(task1),
		Container: aws.String("app"), Command: aws.String("/bin/sh"), Interactive: true})
	if err != nil {
		t.Fatal(err)
	}
	if out.Session == nil || aws.ToString(out.Session.StreamUrl) == "" || aws.ToString(out.ContainerName) != "app" {
		t.Fatalf("ExecuteCommand = %+v", out)
	}
	s := ssm.NewFromConfig(f.Config(ctx))
	list, err := s.DescribeSessions(ctx, &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateActive})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Sessions) != 1 || aws.ToString(list.Sessions[0].Target) != "ecs:staging_"+task1+"_"+task1+"-1" ||
		aws.ToString(list.Sessions[0].Owner) != awsfake.CallerARN {
		t.Fatalf("sessions %+v", list.Sessions)
	}
	if _, err := s.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: out.Session.SessionId}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.SSM().ActiveSessions()); n != 0 {
		t.Errorf("%d sessions active after TerminateSession", n)
	}

	var api smithy.APIError
	for _, in := range []*ecs.ExecuteCommandInput{
		{Cluster: aws.String("staging"), Task: aws.String(task2), Container: aws.String("app"), Command: aws.String("sh"), Interactive: true},   // stopped
		{Cluster: aws.String("staging"), Task: aws.String(task1), Command: aws.String("sh"), Interactive: true},                                 // two containers, none named
		{Cluster: aws.String("staging"), Task: aws.String(task1), Container: aws.String("envoy"), Command: aws.String("sh"), Interactive: true}, // no agent
	} {
		if _, err := c.ExecuteCommand(ctx, in); !errors.As(err, &api) {
			t.Errorf("ExecuteCommand %s/%s: err %v, want an API error", aws.ToString(in.Task), aws.ToString(in.Container), err)
		}
	}
}
