// Package codepipe is tokken's CodePipeline client for release approvals:
// [Client] implements release.CodePipeline with GetPipelineState and
// GetPipelineExecution (what the card shows), PutApprovalResult (the
// decision) and GetPipelineState again (whose decision an already
// completed approval carries). CodePipeline's refusals of a decision are mapped once, here:
// ApprovalAlreadyCompletedException to release.ErrAlreadyCompleted and
// InvalidApprovalTokenException to release.ErrInvalidToken; a missing
// pipeline, stage or action is bot.Permanent (retrying cannot fix it).
// Throttling and server errors are retried by the SDK retryer that
// infra/awsconfig configures.
//
// The worker's role needs codepipeline:GetPipelineState,
// codepipeline:GetPipelineExecution, codepipeline:StartPipelineExecution
// and codepipeline:PutApprovalResult on the configured pipelines
// (template.yaml, ReleasePipelineArns).
package codepipe

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	cptypes "github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/smithy-go"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/release"
)

// Client talks to CodePipeline. Create it with [New]; it is safe for
// concurrent use.
type Client struct {
	cp *codepipeline.Client
}

var _ release.CodePipeline = (*Client)(nil)

// New returns a Client for cfg.
func New(cfg aws.Config) *Client { return &Client{cp: codepipeline.NewFromConfig(cfg)} }

// Execution finds the execution waiting at the approval with token (the
// notification does not name it: GetPipelineState shows the stage's latest
// execution and the action's current token) and reads its trigger and
// source revisions. An execution that has moved on is an error.
func (c *Client) Execution(ctx context.Context, pipeline, stage, action, token string) (release.Execution, error) {
	st, err := c.cp.GetPipelineState(ctx, &codepipeline.GetPipelineStateInput{Name: aws.String(pipeline)})
	if err != nil {
		return release.Execution{}, fmt.Errorf("get state of pipeline %s: %w", pipeline, mapErr(err))
	}
	id := ""
	for _, s := range st.StageStates {
		if aws.ToString(s.StageName) != stage || s.LatestExecution == nil {
			continue
		}
		for _, a := range s.ActionStates {
			if aws.ToString(a.ActionName) == action && a.LatestExecution != nil && aws.ToString(a.LatestExecution.Token) == token {
				id = aws.ToString(s.LatestExecution.PipelineExecutionId)
			}
		}
	}
	if id == "" {
		return release.Execution{}, fmt.Errorf("pipeline %s: no execution waits at %s/%s with this token", pipeline, stage, action)
	}
	out, err := c.cp.GetPipelineExecution(ctx, &codepipeline.GetPipelineExecutionInput{
		PipelineName: aws.String(pipeline), PipelineExecutionId: aws.String(id),
	})
	if err != nil {
		return release.Execution{}, fmt.Errorf("get execution %s of pipeline %s: %w", id, pipeline, mapErr(err))
	}
	ex := release.Execution{ID: id}
	if pe := out.PipelineExecution; pe != nil {
		if pe.Trigger != nil {
			ex.TriggerType, ex.TriggerDetail = string(pe.Trigger.TriggerType), aws.ToString(pe.Trigger.TriggerDetail)
		}
		for _, r := range pe.ArtifactRevisions {
			ex.Revisions = append(ex.Revisions, release.Revision{
				Name: aws.ToString(r.Name), ID: aws.ToString(r.RevisionId),
				Summary: aws.ToString(r.RevisionSummary), URL: aws.ToString(r.RevisionUrl),
			})
		}
	}
	return ex, nil
}

// Outcome reads the approval action's latest execution from
// GetPipelineState: it is the approval's when it carries token or, when
// it carries none, when the stage's latest execution is executionID.
func (c *Client) Outcome(ctx context.Context, pipeline, stage, action, token, executionID string) (release.Outcome, error) {
	st, err := c.cp.GetPipelineState(ctx, &codepipeline.GetPipelineStateInput{Name: aws.String(pipeline)})
	if err != nil {
		return release.Outcome{}, fmt.Errorf("get state of pipeline %s: %w", pipeline, mapErr(err))
	}
	for _, s := range st.StageStates {
		if aws.ToString(s.StageName) != stage {
			continue
		}
		for _, a := range s.ActionStates {
			le := a.LatestExecution
			if aws.ToString(a.ActionName) != action || le == nil {
				continue
			}
			ours := aws.ToString(le.Token) == token
			if le.Token == nil && executionID != "" && s.LatestExecution != nil {
				ours = aws.ToString(s.LatestExecution.PipelineExecutionId) == executionID
			}
			if ours {
				return release.Outcome{Known: true, Status: string(le.Status), Summary: aws.ToString(le.Summary), By: aws.ToString(le.LastUpdatedBy)}, nil
			}
		}
	}
	return release.Outcome{}, nil
}

// PutApprovalResult sends the decision.
func (c *Client) PutApprovalResult(ctx context.Context, r release.Result) error {
	status := cptypes.ApprovalStatusRejected
	if r.Approved {
		status = cptypes.ApprovalStatusApproved
	}
	_, err := c.cp.PutApprovalResult(ctx, &codepipeline.PutApprovalResultInput{
		PipelineName: aws.String(r.Pipeline), StageName: aws.String(r.Stage), ActionName: aws.String(r.Action),
		Token:  aws.String(r.Token),
		Result: &cptypes.ApprovalResult{Status: status, Summary: aws.String(r.Summary)},
	})
	if err != nil {
		return fmt.Errorf("put approval result (%s) for %s/%s/%s: %w", status, r.Pipeline, r.Stage, r.Action, mapErr(err))
	}
	return nil
}

// Start starts an execution of pipeline; requestToken (a client request
// token) makes a retry return the execution the first call started.
func (c *Client) Start(ctx context.Context, pipeline, requestToken string) (string, error) {
	out, err := c.cp.StartPipelineExecution(ctx, &codepipeline.StartPipelineExecutionInput{
		Name: aws.String(pipeline), ClientRequestToken: aws.String(requestToken),
	})
	if err != nil {
		return "", fmt.Errorf("start pipeline %s: %w", pipeline, mapErr(err))
	}
	return aws.ToString(out.PipelineExecutionId), nil
}

// mapErr maps CodePipeline's error codes to the release port's errors.
func mapErr(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.ErrorCode() {
	case "ApprovalAlreadyCompletedException":
		return fmt.Errorf("%w (%s)", release.ErrAlreadyCompleted, ae.ErrorMessage())
	case "InvalidApprovalTokenException":
		return fmt.Errorf("%w (%s)", release.ErrInvalidToken, ae.ErrorMessage())
	case "PipelineNotFoundException", "StageNotFoundException", "ActionNotFoundException",
		"PipelineExecutionNotFoundException", "ValidationException", "AccessDeniedException":
		return bot.Permanent(err)
	}
	return err
}
