package access

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestECSSessionPolicy(t *testing.T) {
	end := time.Date(2026, 3, 3, 10, 30, 0, 0, time.UTC)
	const task = "0123456789abcdef0123456789abcdef"
	arn := "arn:aws:ecs:eu-west-1:222222222222:cluster/staging"
	tests := []struct {
		name    string
		target  ECSTarget
		extra   string
		want    []string // substrings of the policy
		notWant []string
		err     string
	}{
		{name: "service grant reaches the service's tasks by managed tag",
			target: ECSTarget{Cluster: "staging", ClusterARN: arn, Service: "web", Task: task, Containers: []string{"app"}, Tags: map[string]string{"Env": "staging"}},
			want: []string{`"Sid":"ExecCluster","Effect":"Allow","Action":"ecs:ExecuteCommand","Resource":"` + arn + `"`,
				`"Resource":"arn:aws:ecs:eu-west-1:222222222222:task/staging/*"`,
				`"aws:ResourceTag/aws:ecs:serviceName":"web"`, `"aws:ResourceTag/Env":"staging"`, `"ecs:container-name":"app"`,
				`"ecs:DescribeTasks"`, `"aws:CurrentTime":"2026-03-03T10:30:00Z"`},
			notWant: []string{task, "ssm:StartSession", `"Action":"*","Resource":"*"}`}},
		{name: "task grant names the task alone",
			target:  ECSTarget{Cluster: "staging", Service: "web", Task: task, ByTask: true},
			want:    []string{`"Resource":"arn:aws:ecs:*:*:task/staging/` + task + `"`, `"Resource":"arn:aws:ecs:*:*:cluster/staging"`},
			notWant: []string{"aws:ecs:serviceName", "ecs:container-name", "task/staging/*"}},
		{name: "one statement per allowed container",
			target: ECSTarget{Cluster: "staging", Service: "web", Task: task, Containers: []string{"app", "worker"}},
			want:   []string{`"Sid":"ExecTask0"`, `"Sid":"ExecTask1"`, `"ecs:container-name":"app"`, `"ecs:container-name":"worker"`}},
		{name: "profile Deny statements are added",
			target: ECSTarget{Cluster: "staging", Service: "web", Task: task},
			extra:  `{"Statement":[{"Effect":"Deny","Action":"ecs:ExecuteCommand","Resource":"*","Condition":{"StringEquals":{"ecs:container-name":"secrets"}}}]}`,
			want:   []string{`"Effect":"Deny","Action":"ecs:ExecuteCommand"`}},
		{name: "profile Allow statements are refused",
			target: ECSTarget{Cluster: "staging", Service: "web", Task: task},
			extra:  `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`,
			err:    "only Deny statements"},
		{name: "bad names are refused", target: ECSTarget{Cluster: "stag\"ing", Service: "web", Task: task}, err: "bad ECS target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tgt := tt.target
			spec := GrantSpec{Profile: Profile{Name: "staging-exec", Kind: KindECSExec, SessionPolicy: tt.extra}, ECS: &tgt, WindowEnd: end}
			pol, err := SessionPolicy(spec, "aws")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid([]byte(pol)) {
				t.Fatalf("not JSON: %s", pol)
			}
			for _, w := range tt.want {
				if !strings.Contains(pol, w) {
					t.Errorf("policy lacks %s:\n%s", w, pol)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(pol, w) {
					t.Errorf("policy has %s:\n%s", w, pol)
				}
			}
			if !strings.HasSuffix(pol, `"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2026-03-03T10:30:00Z"}}}]}`) {
				t.Errorf("the window-end Deny is not last: %s", pol)
			}
		})
	}
	if _, err := SessionPolicy(GrantSpec{Profile: Profile{Kind: KindECSExec}, WindowEnd: end}, ""); err == nil {
		t.Error("an ecs-exec grant without a target got a policy")
	}
}

func TestSplitECSTarget(t *testing.T) {
	for in, want := range map[string][2]string{
		"web investigating 502s": {"web", "investigating 502s"},
		"  web   why ":           {"web", "why"},
		"web":                    {"web", ""},
		"":                       {"", ""},
	} {
		if a, b := splitECSTarget(in); a != want[0] || b != want[1] {
			t.Errorf("splitECSTarget(%q) = %q, %q; want %q", in, a, b, want)
		}
	}
}

// inventory is a fixed ECS for ecsTarget.
type inventory struct {
	svcs  map[string]ECSService
	tasks map[string]ECSTask
}

func (i inventory) Service(_ context.Context, _, name string) (ECSService, bool, error) {
	s, ok := i.svcs[name]
	return s, ok, nil
}

func (i inventory) Task(_ context.Context, _, id string) (ECSTask, bool, error) {
	t, ok := i.tasks[id]
	return t, ok, nil
}

func TestECSTargetContainers(t *testing.T) {
	const (
		sidecar = "0123456789abcdef0123456789abcdef" // app runs the agent, envoy does not
		noAgent = "1123456789abcdef0123456789abcdef"
	)
	task := func(id string, cs ...ECSContainer) ECSTask {
		return ECSTask{ID: id, Service: "web", Family: "web", LastStatus: "RUNNING", EnableExecuteCommand: true, Containers: cs}
	}
	s := &Service{ecs: inventory{tasks: map[string]ECSTask{
		sidecar: task(sidecar, ECSContainer{Name: "envoy"}, ECSContainer{Name: "app", ExecAgent: "RUNNING"}),
		noAgent: task(noAgent, ECSContainer{Name: "app", ExecAgent: "STOPPED"}),
	}}}
	p := Profile{Name: "exec", Kind: KindECSExec, ECS: ECSSelector{Cluster: "staging"}}
	got, err := s.ecsTarget(context.Background(), p, sidecar)
	if err != nil || got.Container != "app" || !got.ByTask {
		t.Fatalf("sidecar task: %+v, %v (want the shell in app)", got, err)
	}
	if _, err := s.ecsTarget(context.Background(), p, noAgent); err == nil || !strings.Contains(err.Error(), "ExecuteCommandAgent") {
		t.Errorf("task without a running agent: %v", err)
	}
	p.ECS.Containers = []string{"db"}
	if _, err := s.ecsTarget(context.Background(), p, sidecar); err == nil || !strings.Contains(err.Error(), "none of the containers this profile allows (db)") {
		t.Errorf("task without the allowed container: %v", err)
	}
	p.ECS.Containers = []string{"envoy"}
	if _, err := s.ecsTarget(context.Background(), p, sidecar); err == nil || !strings.Contains(err.Error(), "ExecuteCommandAgent") {
		t.Errorf("allowed container without the agent: %v", err)
	}
	if _, err := (&Service{}).ecsTarget(context.Background(), p, sidecar); err == nil || !strings.Contains(err.Error(), "no ECS client") {
		t.Errorf("without an ECS inventory: %v", err)
	}
}
