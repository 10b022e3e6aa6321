package awsfake_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	cptypes "github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/tokken/tokken/testkit/awsfake"
)

// TestCodePipelineThroughTheSDK drives the fake with the real client:
// starting an execution, reading it, and the typed errors the SDK decodes.
func TestCodePipelineThroughTheSDK(t *testing.T) {
	ctx := context.Background()
	f := awsfake.New(t)
	c := codepipeline.NewFromConfig(f.Config(ctx))
	f.CodePipeline().AddPipeline("web-prod")

	out, err := c.StartPipelineExecution(ctx, &codepipeline.StartPipelineExecutionInput{Name: aws.String("web-prod")})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.PipelineExecutionId)
	if got := f.CodePipeline().Executions("web-prod"); len(got) != 1 || got[0] != id {
		t.Fatalf("executions = %v, want [%s]", got, id)
	}
	ex, err := c.GetPipelineExecution(ctx, &codepipeline.GetPipelineExecutionInput{PipelineName: aws.String("web-prod"), PipelineExecutionId: out.PipelineExecutionId})
	if err != nil {
		t.Fatal(err)
	}
	if pe := ex.PipelineExecution; pe == nil || pe.Status != cptypes.PipelineExecutionStatusInProgress || aws.ToString(pe.Trigger.TriggerDetail) != awsfake.CallerARN {
		t.Errorf("execution = %+v", ex.PipelineExecution)
	}

	var notFound *cptypes.PipelineNotFoundException
	if _, err := c.StartPipelineExecution(ctx, &codepipeline.StartPipelineExecutionInput{Name: aws.String("nope")}); !errors.As(err, &notFound) {
		t.Errorf("unknown pipeline: %v", err)
	}
	var noExec *cptypes.PipelineExecutionNotFoundException
	if _, err := c.GetPipelineExecution(ctx, &codepipeline.GetPipelineExecutionInput{PipelineName: aws.String("web-prod"), PipelineExecutionId: aws.String("0000")}); !errors.As(err, &noExec) {
		t.Errorf("unknown execution: %v", err)
	}
	_, token := f.CodePipeline().WaitForApproval("web-prod", "Release", "Approve", "Webhook", "push")
	put := func() error {
		_, err := c.PutApprovalResult(ctx, &codepipeline.PutApprovalResultInput{
			PipelineName: aws.String("web-prod"), StageName: aws.String("Release"), ActionName: aws.String("Approve"), Token: aws.String(token),
			Result: &cptypes.ApprovalResult{Status: cptypes.ApprovalStatusApproved, Summary: aws.String("ok")},
		})
		return err
	}
	if err := put(); err != nil {
		t.Fatal(err)
	}
	var done *cptypes.ApprovalAlreadyCompletedException
	if err := put(); !errors.As(err, &done) {
		t.Errorf("second decision: %v", err)
	}
	var invalid *cptypes.InvalidApprovalTokenException
	token = "11111111-2222-3333-4444-555555555555"
	if err := put(); !errors.As(err, &invalid) {
		t.Errorf("unknown token: %v", err)
	}
	if n := len(f.Calls(awsfake.CodePipelineService, "PutApprovalResult")); n != 3 {
		t.Errorf("%d PutApprovalResult calls recorded, want 3", n)
	}
}
