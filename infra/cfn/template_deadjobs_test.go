package cfn

import (
	"reflect"
	"testing"
)

// TestTemplateWorkerConsumesTheDeadLetterQueue: every queue's dead-letter
// queue is an SQS event source of the worker (reporting per-record
// failures), the worker is told which queue that is (TOKKEN_TIMER_DLQ_ARN),
// and a failed hand-over waits at least as long as the worker may run, so
// dead jobs are handed over, not left for someone to notice.
func TestTemplateWorkerConsumesTheDeadLetterQueue(t *testing.T) {
	tpl := loadRepoTemplate(t)
	worker, ok := tpl.Resources["WorkerFunction"]
	if !ok {
		t.Fatal("no WorkerFunction")
	}
	dlqs := map[string]bool{}
	for _, id := range tpl.OfType("AWS::SQS::Queue") {
		rp, _ := tpl.Resources[id].Properties["RedrivePolicy"].(map[string]any)
		if ga, ok := rp["deadLetterTargetArn"].(map[string]any); ok {
			if parts, ok := ga["Fn::GetAtt"].([]any); ok && len(parts) == 2 {
				dlqs[parts[0].(string)] = true
			}
		}
	}
	if len(dlqs) == 0 {
		t.Fatal("no dead-letter queue")
	}
	evs, _ := worker.Properties["Events"].(map[string]any)
	timeout, _ := worker.Properties["Timeout"].(int)
	for dlq := range dlqs {
		arn := map[string]any{"Fn::GetAtt": []any{dlq, "Arn"}}
		found := false
		for name, e := range evs {
			em, _ := e.(map[string]any)
			props, _ := em["Properties"].(map[string]any)
			if em["Type"] != "SQS" || !reflect.DeepEqual(props["Queue"], arn) {
				continue
			}
			found = true
			if !reflect.DeepEqual(asList(props["FunctionResponseTypes"]), []any{"ReportBatchItemFailures"}) {
				t.Errorf("event %s on %s does not report batch item failures: one failed hand-over would redeliver the batch", name, dlq)
			}
		}
		if !found {
			t.Errorf("the worker has no SQS event on the dead-letter queue %s", dlq)
		}
		env, _ := worker.Properties["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		if !reflect.DeepEqual(vars["TOKKEN_TIMER_DLQ_ARN"], arn) {
			t.Errorf("TOKKEN_TIMER_DLQ_ARN = %v, want %v: the worker must know which records are dead jobs", vars["TOKKEN_TIMER_DLQ_ARN"], arn)
		}
		vis, _ := tpl.Resources[dlq].Properties["VisibilityTimeout"].(int)
		if vis < timeout || vis < 300 {
			t.Errorf("%s VisibilityTimeout = %d, want at least the worker timeout (%d) and 300 s (no tight retry loop)", dlq, vis, timeout)
		}
	}
}
