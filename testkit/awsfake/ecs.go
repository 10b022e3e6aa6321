package awsfake

import (
	"slices"
	"strings"
)

// ECSService is the credential-scope service name of ECS; it is also the
// service key of [Call], [Fake.Fail] and [Fake.SetLatency].
const ECSService = "ecs"

// ECS fakes the ECS calls ECS Exec needs (AWS JSON 1.1): ListClusters,
// ListServices, DescribeServices, ListTasks, DescribeTasks and
// ExecuteCommand. ExecuteCommand opens a session in the [SSM] fake, owned
// by the caller, with the target ECS gives it
// (ecs:<cluster>_<task id>_<container runtime id>), so DescribeSessions
// lists it and TerminateSession ends it.
type ECS struct {
	f        *Fake
	clusters []string               // names, in creation order; guarded by f.mu
	services map[string]*ECSSvc     // by cluster/name
	tasks    map[string]*ECSTaskDef // by task id
}

// ECSSvc is a fake ECS service.
type ECSSvc struct {
	Cluster, Name        string
	EnableExecuteCommand bool
	ManagedTags          bool // enableECSManagedTags
}

// ECSTaskDef is a fake ECS task.
type ECSTaskDef struct {
	Cluster    string
	ID         string // 32 hex digits
	Service    string // "" for a standalone task
	Family     string
	LastStatus string // RUNNING, STOPPED, ...
	// EnableExecuteCommand is the task's flag.
	EnableExecuteCommand bool
	Containers           []ECSContainerDef
	Tags                 map[string]string
}

// ECSContainerDef is a container of a fake task.
type ECSContainerDef struct {
	Name, RuntimeID string
	ExecAgent       string // ExecuteCommandAgent status, "" for none
}

func newECS(f *Fake) *ECS {
	return &ECS{f: f, services: map[string]*ECSSvc{}, tasks: map[string]*ECSTaskDef{}}
}

func (m *ECS) service() *service {
	return &service{
		proto: protoJSON11, target: "AmazonEC2ContainerServiceV20141113",
		ops: map[string]handlerFunc{
			"ListClusters":     m.listClusters,
			"ListServices":     m.listServices,
			"DescribeServices": m.describeServices,
			"ListTasks":        m.listTasks,
			"DescribeTasks":    m.describeTasks,
			"ExecuteCommand":   m.executeCommand,
		},
		faultOf: func(ft Fault) *apiError {
			if ft == Throttle {
				return &apiError{status: 400, code: "ThrottlingException", msg: "Rate exceeded", sender: true}
			}
			return &apiError{status: 500, code: "ServerException", msg: "Service Unavailable. Please try again later."}
		},
	}
}

// PutService creates or replaces a service (and its cluster).
func (m *ECS) PutService(s ECSSvc) {
	m.f.update(func() {
		m.addClusterLocked(s.Cluster)
		c := s
		m.services[s.Cluster+"/"+s.Name] = &c
	})
}

// PutTask creates or replaces a task (and its cluster). A task of a service
// carries the aws:ecs:serviceName and aws:ecs:clusterName tags when the
// service has managed tags on, as ECS tags them.
func (m *ECS) PutTask(t ECSTaskDef) {
	m.f.update(func() {
		m.addClusterLocked(t.Cluster)
		c := t
		c.Containers = slices.Clone(t.Containers)
		c.Tags = map[string]string{}
		for k, v := range t.Tags {
			c.Tags[k] = v
		}
		if svc := m.services[t.Cluster+"/"+t.Service]; svc != nil && svc.ManagedTags {
			c.Tags["aws:ecs:serviceName"] = t.Service
			c.Tags["aws:ecs:clusterName"] = t.Cluster
		}
		m.tasks[t.ID] = &c
	})
}

// SetTaskStatus changes a task's lastStatus (e.g. to STOPPED).
func (m *ECS) SetTaskStatus(id, status string) {
	m.f.update(func() {
		if t := m.tasks[id]; t != nil {
			t.LastStatus = status
		}
	})
}

func (m *ECS) addClusterLocked(name string) {
	if !slices.Contains(m.clusters, name) {
		m.clusters = append(m.clusters, name)
	}
}

func (m *ECS) clusterARN(name string) string {
	return "arn:aws:ecs:" + Region + ":" + AccountID + ":cluster/" + name
}

func (m *ECS) taskARN(t *ECSTaskDef) string {
	return "arn:aws:ecs:" + Region + ":" + AccountID + ":task/" + t.Cluster + "/" + t.ID
}

// clusterLocked resolves a cluster given by name or ARN ("default" when
// empty), or fails like ECS.
func (m *ECS) clusterLocked(ref string) (string, *apiError) {
	if ref == "" {
		ref = "default"
	}
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		name = ref[strings.LastIndex(ref, "/")+1:]
	}
	if !slices.Contains(m.clusters, name) {
		return "", clientErr("ClusterNotFoundException", "Cluster not found.")
	}
	return name, nil
}

// lastPart is the last path part of an ARN, or s itself.
func lastPart(s string) string { return s[strings.LastIndex(s, "/")+1:] }

func (m *ECS) listClusters(r *request) (any, *apiError) {
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	arns := []string{}
	for _, c := range m.clusters {
		arns = append(arns, m.clusterARN(c))
	}
	return map[string]any{"clusterArns": arns}, nil
}

func (m *ECS) listServices(r *request) (any, *apiError) {
	var in struct {
		Cluster string `json:"cluster"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	c, aerr := m.clusterLocked(in.Cluster)
	if aerr != nil {
		return nil, aerr
	}
	arns := []string{}
	for _, s := range m.services {
		if s.Cluster == c {
			arns = append(arns, "arn:aws:ecs:"+Region+":"+AccountID+":service/"+c+"/"+s.Name)
		}
	}
	slices.Sort(arns)
	return map[string]any{"serviceArns": arns}, nil
}

func (m *ECS) describeServices(r *request) (any, *apiError) {
	var in struct {
		Cluster  string   `json:"cluster"`
		Services []string `json:"services"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	if len(in.Services) == 0 || len(in.Services) > 10 {
		return nil, clientErr("InvalidParameterException", "services must name 1 to 10 services.")
	}
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	c, aerr := m.clusterLocked(in.Cluster)
	if aerr != nil {
		return nil, aerr
	}
	svcs, failures := []map[string]any{}, []map[string]any{}
	for _, ref := range in.Services {
		name := lastPart(ref)
		arn := "arn:aws:ecs:" + Region + ":" + AccountID + ":service/" + c + "/" + name
		s := m.services[c+"/"+name]
		if s == nil {
			failures = append(failures, map[string]any{"arn": arn, "reason": "MISSING"})
			continue
		}
		running := 0
		for _, t := range m.tasks {
			if t.Cluster == c && t.Service == name && t.LastStatus == "RUNNING" {
				running++
			}
		}
		svcs = append(svcs, map[string]any{
			"serviceName": name, "serviceArn": arn, "clusterArn": m.clusterARN(c), "status": "ACTIVE",
			"enableExecuteCommand": s.EnableExecuteCommand, "enableECSManagedTags": s.ManagedTags,
			"runningCount": running, "desiredCount": running, "launchType": "FARGATE",
		})
	}
	return map[string]any{"services": svcs, "failures": failures}, nil
}

func (m *ECS) listTasks(r *request) (any, *apiError) {
	var in struct {
		Cluster       string `json:"cluster"`
		ServiceName   string `json:"serviceName"`
		Family        string `json:"family"`
		DesiredStatus string `json:"desiredStatus"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	c, aerr := m.clusterLocked(in.Cluster)
	if aerr != nil {
		return nil, aerr
	}
	if in.ServiceName != "" && m.services[c+"/"+lastPart(in.ServiceName)] == nil {
		return nil, clientErr("ServiceNotFoundException", "Service not found.")
	}
	want := in.DesiredStatus
	if want == "" {
		want = "RUNNING"
	}
	arns := []string{}
	for _, t := range m.tasks {
		desired := "RUNNING"
		if t.LastStatus == "STOPPED" {
			desired = "STOPPED"
		}
		if t.Cluster != c || desired != want ||
			(in.ServiceName != "" && t.Service != lastPart(in.ServiceName)) || (in.Family != "" && t.Family != in.Family) {
			continue
		}
		arns = append(arns, m.taskARN(t))
	}
	slices.Sort(arns)
	return map[string]any{"taskArns": arns}, nil
}

func (m *ECS) describeTasks(r *request) (any, *apiError) {
	var in struct {
		Cluster string   `json:"cluster"`
		Tasks   []string `json:"tasks"`
		Include []string `json:"include"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	if len(in.Tasks) == 0 || len(in.Tasks) > 100 {
		return nil, clientErr("InvalidParameterException", "Tasks cannot be empty.")
	}
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	c, aerr := m.clusterLocked(in.Cluster)
	if aerr != nil {
		return nil, aerr
	}
	tasks, failures := []map[string]any{}, []map[string]any{}
	for _, ref := range in.Tasks {
		t := m.tasks[lastPart(ref)]
		if t == nil || t.Cluster != c {
			failures = append(failures, map[string]any{"arn": ref, "reason": "MISSING"})
			continue
		}
		var containers []map[string]any
		for _, k := range t.Containers {
			ct := map[string]any{"name": k.Name, "runtimeId": k.RuntimeID, "taskArn": m.taskARN(t), "lastStatus": t.LastStatus}
			if k.ExecAgent != "" {
				ct["managedAgents"] = []map[string]any{{"name": "ExecuteCommandAgent", "lastStatus": k.ExecAgent}}
			}
			containers = append(containers, ct)
		}
		out := map[string]any{
			"taskArn": m.taskARN(t), "clusterArn": m.clusterARN(c), "lastStatus": t.LastStatus,
			"desiredStatus": t.LastStatus, "enableExecuteCommand": t.EnableExecuteCommand, "containers": containers,
			"taskDefinitionArn": "arn:aws:ecs:" + Region + ":" + AccountID + ":task-definition/" + t.Family + ":1",
			"launchType":        "FARGATE",
		}
		if t.Service != "" {
			out["group"] = "service:" + t.Service
		}
		if slices.Contains(in.Include, "TAGS") {
			var tags []map[string]string
			for k, v := range t.Tags {
				tags = append(tags, map[string]string{"key": k, "value": v})
			}
			out["tags"] = tags
		}
		tasks = append(tasks, out)
	}
	return map[string]any{"tasks": tasks, "failures": failures}, nil
}

func (m *ECS) executeCommand(r *request) (any, *apiError) {
	var in struct {
		Cluster     string `json:"cluster"`
		Container   string `json:"container"`
		Command     string `json:"command"`
		Interactive bool   `json:"interactive"`
		Task        string `json:"task"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	if in.Command == "" || in.Task == "" {
		return nil, clientErr("InvalidParameterException", "command and task are required.")
	}
	if !in.Interactive {
		return nil, clientErr("InvalidParameterException", "Interactive is the only mode supported currently.")
	}
	m.f.mu.Lock()
	c, aerr := m.clusterLocked(in.Cluster)
	if aerr != nil {
		m.f.mu.Unlock()
		return nil, aerr
	}
	t := m.tasks[lastPart(in.Task)]
	var ct *ECSContainerDef
	switch {
	case t == nil || t.Cluster != c:
		aerr = clientErr("InvalidParameterException", "The specified task was not found.")
	case t.LastStatus != "RUNNING":
		aerr = clientErr("InvalidParameterException", "The execute command failed because the task is not in RUNNING state.")
	case !t.EnableExecuteCommand:
		aerr = clientErr("InvalidParameterException", "The execute command failed because execute command was not enabled when the task was run or the execute command agent isn’t running. Wait and try again or run a new task with execute command enabled and try again.")
	case in.Container == "" && len(t.Containers) != 1:
		aerr = clientErr("InvalidParameterException", "Task has multiple containers; a container name must be specified.")
	}
	if aerr == nil {
		for i := range t.Containers {
			if in.Container == "" || t.Containers[i].Name == in.Container {
				ct = &t.Containers[i]
				break
			}
		}
		switch {
		case ct == nil:
			aerr = clientErr("InvalidParameterException", "The specified container was not found.")
		case ct.ExecAgent != "RUNNING":
			aerr = clientErr("TargetNotConnectedException", "The execute command failed due to an internal error. Try again later.")
		}
	}
	m.f.mu.Unlock()
	if aerr != nil {
		return nil, aerr
	}
	target := "ecs:" + c + "_" + t.ID + "_" + ct.RuntimeID
	id := "ecs-execute-command-" + randomHex(9)[:17]
	m.f.update(func() {
		m.f.ssm.sessions = append(m.f.ssm.sessions, &Session{
			ID: id, Target: target, Owner: r.caller.arn, Status: "Connected", Start: r.now,
		})
	})
	return map[string]any{
		"clusterArn": m.clusterARN(c), "containerName": ct.Name, "interactive": true,
		"containerArn": "arn:aws:ecs:" + Region + ":" + AccountID + ":container/" + c + "/" + t.ID + "/" + ct.RuntimeID,
		"taskArn":      m.taskARN(t),
		"session": map[string]string{
			"sessionId":  id,
			"tokenValue": "fake-token-" + randomHex(16),
			"streamUrl":  "wss://ssmmessages." + Region + ".amazonaws.com/v1/data-channel/" + id + "?role=publish_subscribe",
		},
	}, nil
}
