package awsfake

import (
	"sort"
	"time"
)

// CodePipelineService is the credential-scope service name of CodePipeline;
// it is also the service key of [Call], [Fake.Fail] and [Fake.SetLatency].
const CodePipelineService = "codepipeline"

// CodePipeline fakes AWS CodePipeline's manual approvals (AWS JSON 1.1):
// GetPipelineState, GetPipelineExecution, PutApprovalResult and
// StartPipelineExecution, for pipelines the test adds with
// [CodePipeline.AddPipeline]. A test puts an execution at an approval
// action with [CodePipeline.WaitForApproval], which returns the token the
// SNS notification would carry; the token stays valid until it is decided
// (PutApprovalResult or [CodePipeline.Decide], as in the console) or
// expired ([CodePipeline.Expire]).
type CodePipeline struct {
	f         *Fake
	pipelines map[string]*pipeline // by name; guarded by f.mu
}

// Revision is one source revision of an execution (artifactRevisions).
type Revision struct {
	Name, RevisionID, Summary, URL string
}

// ApprovalResult is what PutApprovalResult recorded for a token.
type ApprovalResult struct {
	Status, Summary string
	Caller          string // ARN of the identity that decided
}

type pipeline struct {
	name string
	// byRequest maps StartPipelineExecution client request tokens to the
	// execution they started.
	byRequest  map[string]string
	executions map[string]*execution
	order      []string // execution ids, oldest first
	// approvals by token: the open (and decided) approval actions.
	approvals map[string]*approval
	// latest is the newest approval of each stage: GetPipelineState shows
	// it, waiting or decided, until a newer execution reaches the stage.
	latest map[string]*approval
}

type execution struct {
	id, status   string
	revisions    []Revision
	trigger      [2]string // triggerType, triggerDetail
	started      time.Time
	approvalWait *approval // the approval the execution waits at, if any
}

type approval struct {
	stage, action, token, executionID string
	expired                           bool
	result                            *ApprovalResult
}

func newCodePipeline(f *Fake) *CodePipeline {
	return &CodePipeline{f: f, pipelines: map[string]*pipeline{}}
}

// AddPipeline creates an empty pipeline.
func (c *CodePipeline) AddPipeline(name string) {
	c.f.update(func() {
		if _, ok := c.pipelines[name]; !ok {
			c.pipelines[name] = &pipeline{name: name, executions: map[string]*execution{}, approvals: map[string]*approval{}, byRequest: map[string]string{}, latest: map[string]*approval{}}
		}
	})
}

// WaitForApproval starts an execution of pipeline (created if missing)
// triggered by triggerType/triggerDetail with revs, stopped at the manual
// approval stage/action, and returns its id and the approval token.
func (c *CodePipeline) WaitForApproval(name, stage, action, triggerType, triggerDetail string, revs ...Revision) (executionID, token string) {
	c.AddPipeline(name)
	c.f.update(func() {
		p := c.pipelines[name]
		e := c.startLocked(p, triggerType, triggerDetail, revs)
		a := &approval{stage: stage, action: action, token: requestID(), executionID: e.id}
		p.approvals[a.token] = a
		p.latest[stage] = a
		e.approvalWait = a
		executionID, token = e.id, a.token
	})
	return executionID, token
}

// AwaitApproval stops the existing execution executionID of pipeline at
// the manual approval stage/action and returns the token ("" when there is
// no such execution).
func (c *CodePipeline) AwaitApproval(name, executionID, stage, action string) (token string) {
	c.f.update(func() {
		p := c.pipelines[name]
		if p == nil || p.executions[executionID] == nil {
			return
		}
		a := &approval{stage: stage, action: action, token: requestID(), executionID: executionID}
		p.approvals[a.token] = a
		p.latest[stage] = a
		p.executions[executionID].approvalWait = a
		token = a.token
	})
	return token
}

// startLocked adds an InProgress execution. f.mu must be held.
func (c *CodePipeline) startLocked(p *pipeline, triggerType, triggerDetail string, revs []Revision) *execution {
	e := &execution{id: requestID(), status: "InProgress", revisions: revs, trigger: [2]string{triggerType, triggerDetail}, started: c.f.now()}
	p.executions[e.id] = e
	p.order = append(p.order, e.id)
	return e
}

// Decide decides the approval token outside tokken, as someone in the
// console would.
func (c *CodePipeline) Decide(name, token, status string) {
	c.f.update(func() {
		if p := c.pipelines[name]; p != nil && p.approvals[token] != nil {
			p.approvals[token].result = &ApprovalResult{Status: status, Summary: "decided in the console", Caller: "console"}
		}
	})
}

// Expire makes the approval token time out (after seven days at most the
// action fails and its token is no longer valid).
func (c *CodePipeline) Expire(name, token string) {
	c.f.update(func() {
		if p := c.pipelines[name]; p != nil && p.approvals[token] != nil {
			p.approvals[token].expired = true
		}
	})
}

// Result returns what PutApprovalResult (or Decide) recorded for token.
func (c *CodePipeline) Result(name, token string) (ApprovalResult, bool) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if p := c.pipelines[name]; p != nil && p.approvals[token] != nil && p.approvals[token].result != nil {
		return *p.approvals[token].result, true
	}
	return ApprovalResult{}, false
}

// Executions returns the ids of pipeline name's executions, oldest first.
func (c *CodePipeline) Executions(name string) []string {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if p := c.pipelines[name]; p != nil {
		return append([]string(nil), p.order...)
	}
	return nil
}

func (c *CodePipeline) service() *service {
	return &service{
		proto: protoJSON11, target: "CodePipeline_20150709",
		ops: map[string]handlerFunc{
			"GetPipelineState":       c.getPipelineState,
			"GetPipelineExecution":   c.getPipelineExecution,
			"PutApprovalResult":      c.putApprovalResult,
			"StartPipelineExecution": c.startPipelineExecution,
		},
		faultOf: func(ft Fault) *apiError {
			if ft == Throttle {
				return &apiError{status: 400, code: "ThrottlingException", msg: "Rate exceeded", sender: true}
			}
			return &apiError{status: 500, code: "InternalFailure", msg: "An internal error occurred."}
		},
	}
}

// pipelineLocked finds the pipeline name. f.mu must be held.
func (c *CodePipeline) pipelineLocked(name string) (*pipeline, *apiError) {
	if name == "" {
		return nil, clientErr("ValidationException", "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	p := c.pipelines[name]
	if p == nil {
		return nil, clientErr("PipelineNotFoundException", "Account '%s' does not have a pipeline with name '%s'", AccountID, name)
	}
	return p, nil
}

func (c *CodePipeline) putApprovalResult(r *request) (any, *apiError) {
	var in struct {
		PipelineName, StageName, ActionName, Token string
		Result                                     struct{ Summary, Status string }
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	if len(in.Result.Summary) > 512 {
		return nil, clientErr("ValidationException", "1 validation error detected: Value at 'result.summary' failed to satisfy constraint: Member must have length less than or equal to 512")
	}
	if in.Result.Status != "Approved" && in.Result.Status != "Rejected" {
		return nil, clientErr("ValidationException", "1 validation error detected: Value '%s' at 'result.status' failed to satisfy constraint: Member must satisfy enum value set: [Approved, Rejected]", in.Result.Status)
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	p, aerr := c.pipelineLocked(in.PipelineName)
	if aerr != nil {
		return nil, aerr
	}
	a := p.approvals[in.Token]
	switch {
	case a == nil || a.expired:
		return nil, clientErr("InvalidApprovalTokenException", "The token for the approval is not valid or is expired.")
	case a.stage != in.StageName:
		return nil, clientErr("StageNotFoundException", "Stage %s not found in pipeline %s", in.StageName, p.name)
	case a.action != in.ActionName:
		return nil, clientErr("ActionNotFoundException", "Action %s not found in stage %s", in.ActionName, in.StageName)
	case a.result != nil:
		return nil, clientErr("ApprovalAlreadyCompletedException", "The approval request already received a response or has expired.")
	}
	a.result = &ApprovalResult{Status: in.Result.Status, Summary: in.Result.Summary, Caller: r.caller.arn}
	if e := p.executions[a.executionID]; e != nil {
		e.approvalWait = nil
		if in.Result.Status == "Rejected" {
			e.status = "Failed"
		}
	}
	return map[string]any{"approvedAt": epoch(c.f.now())}, nil
}

func (c *CodePipeline) getPipelineExecution(r *request) (any, *apiError) {
	var in struct{ PipelineName, PipelineExecutionID string }
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	p, aerr := c.pipelineLocked(in.PipelineName)
	if aerr != nil {
		return nil, aerr
	}
	e := p.executions[in.PipelineExecutionID]
	if e == nil {
		return nil, clientErr("PipelineExecutionNotFoundException", "Pipeline execution %s not found in pipeline %s", in.PipelineExecutionID, p.name)
	}
	revs := make([]map[string]any, 0, len(e.revisions))
	for _, rv := range e.revisions {
		revs = append(revs, map[string]any{"name": rv.Name, "revisionId": rv.RevisionID, "revisionSummary": rv.Summary, "revisionUrl": rv.URL})
	}
	return map[string]any{"pipelineExecution": map[string]any{
		"pipelineName": p.name, "pipelineVersion": 1, "pipelineExecutionId": e.id, "status": e.status,
		"artifactRevisions": revs,
		"trigger":           map[string]any{"triggerType": e.trigger[0], "triggerDetail": e.trigger[1]},
	}}, nil
}

func (c *CodePipeline) getPipelineState(r *request) (any, *apiError) {
	var in struct{ Name string }
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	p, aerr := c.pipelineLocked(in.Name)
	if aerr != nil {
		return nil, aerr
	}
	// Each approval stage shows its latest execution, as the real API does:
	// waiting (InProgress, with the token) or decided (Succeeded or
	// Failed, with the decision's summary and who made it).
	stages := make([]string, 0, len(p.latest))
	for s := range p.latest {
		stages = append(stages, s)
	}
	sort.Strings(stages)
	out := make([]map[string]any, 0, len(stages))
	for _, s := range stages {
		a := p.latest[s]
		status, ex := "InProgress", map[string]any{"token": a.token}
		switch {
		case a.result != nil:
			status = "Succeeded"
			if a.result.Status == "Rejected" {
				status = "Failed"
			}
			ex["summary"], ex["lastUpdatedBy"] = a.result.Summary, a.result.Caller
		case a.expired:
			status = "Failed"
		}
		ex["status"] = status
		out = append(out, map[string]any{
			"stageName":       s,
			"latestExecution": map[string]any{"pipelineExecutionId": a.executionID, "status": status},
			"actionStates":    []map[string]any{{"actionName": a.action, "latestExecution": ex}},
		})
	}
	return map[string]any{"pipelineName": p.name, "pipelineVersion": 1, "stageStates": out}, nil
}

func (c *CodePipeline) startPipelineExecution(r *request) (any, *apiError) {
	var in struct{ Name, ClientRequestToken string }
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	p, aerr := c.pipelineLocked(in.Name)
	if aerr != nil {
		return nil, aerr
	}
	if id, ok := p.byRequest[in.ClientRequestToken]; ok && in.ClientRequestToken != "" {
		return map[string]any{"pipelineExecutionId": id}, nil
	}
	e := c.startLocked(p, "StartPipelineExecution", r.caller.arn, nil)
	if in.ClientRequestToken != "" {
		p.byRequest[in.ClientRequestToken] = e.id
	}
	return map[string]any{"pipelineExecutionId": e.id}, nil
}
