package release

import (
	"context"
	"errors"
	"time"
)

// State is where an approval stands.
type State string

// States of an approval. Every state but StatePending and StateDeciding
// is final.
const (
	StatePending   State = "pending"  // waiting for votes
	StateDeciding  State = "deciding" // quorum reached or rejected; PutApprovalResult not yet accepted
	StateApproved  State = "approved"
	StateRejected  State = "rejected"
	StateExpired   State = "expired"           // the token expired before a decision
	StateElsewhere State = "decided_elsewhere" // decided in the console or by another tool
	StateInvalid   State = "invalid"           // CodePipeline no longer knows the token (a newer execution superseded it)
	StateFailed    State = "failed"            // the decision was not sent, or CodePipeline refused it for good (pipeline, stage or action gone, access denied)
)

// Final reports whether nothing can change the approval any more.
func (s State) Final() bool { return s != StatePending && s != StateDeciding }

// Vote is one approver's click.
type Vote struct {
	By     string    `json:"by"` // Slack user id
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// MessageRef locates the approval card.
type MessageRef struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

// IsZero reports whether the card has not been posted.
func (m MessageRef) IsZero() bool { return m.TS == "" }

// Revision is one source revision of the execution waiting for approval
// (GetPipelineExecution artifactRevisions).
type Revision struct {
	Name    string `json:"name,omitempty"`
	ID      string `json:"id,omitempty"`
	Summary string `json:"summary,omitempty"` // the commit message
	URL     string `json:"url,omitempty"`
}

// Execution is what CodePipeline tells about the execution waiting at an
// approval: who or what started it and its source revisions.
type Execution struct {
	ID            string     `json:"id"`
	TriggerType   string     `json:"trigger_type,omitempty"`
	TriggerDetail string     `json:"trigger_detail,omitempty"`
	Revisions     []Revision `json:"revisions,omitempty"`
}

// Approval is one manual-approval action waiting for (or decided by)
// Slack approvers. Stored under KindApproval by ApprovalID.
type Approval struct {
	ID           string    `json:"id"`
	Pipeline     string    `json:"pipeline"`
	Stage        string    `json:"stage"`
	Action       string    `json:"action"`
	Token        string    `json:"token"`
	Region       string    `json:"region,omitempty"`
	ConsoleLink  string    `json:"console_link,omitempty"`
	ReviewLink   string    `json:"review_link,omitempty"`
	ExternalLink string    `json:"external_link,omitempty"`
	CustomData   string    `json:"custom_data,omitempty"`
	Expires      time.Time `json:"expires,omitzero"`
	Env          string    `json:"env,omitempty"`
	// Required is the number of distinct approvers the approval needs:
	// pipelines.yaml's approvals, raised by any @approvals of the rules
	// that let an approver approve.
	Required  int        `json:"required"`
	Execution *Execution `json:"execution,omitempty"`
	// StartedBy is the Slack user who started the execution with
	// /release, if one did: they never count as its approver.
	StartedBy string `json:"started_by,omitempty"`

	State     State      `json:"state"`
	Approvals []Vote     `json:"approvals,omitempty"`
	Rejection *Vote      `json:"rejection,omitempty"`
	Summary   string     `json:"summary,omitempty"` // what PutApprovalResult was sent
	Failure   string     `json:"failure,omitempty"` // why the decision failed (StateFailed)
	Message   MessageRef `json:"message"`
	Created   time.Time  `json:"created"`
	Updated   time.Time  `json:"updated"`

	// Sending is the decision being sent, recorded (with the approvers
	// above) before the first PutApprovalResult and counted before each,
	// so that a retry meeting ErrAlreadyCompleted can tell tokken's own
	// earlier call from a decision made in the console.
	Sending *Sending `json:"sending,omitempty"`
}

// Sending is the decision tokken sends for an approval in StateDeciding.
type Sending struct {
	Approved bool   `json:"approved"`
	Summary  string `json:"summary"` // exactly what PutApprovalResult carries
	// Attempts counts the PutApprovalResult calls begun, each recorded
	// before it is made.
	Attempts int       `json:"attempts"`
	Last     time.Time `json:"last,omitzero"`
}

// ApprovedBy reports whether user has approved.
func (a Approval) ApprovedBy(user string) bool {
	for _, v := range a.Approvals {
		if v.By == user {
			return true
		}
	}
	return false
}

// Errors a CodePipeline adapter maps CodePipeline's exceptions to.
var (
	// ErrAlreadyCompleted: ApprovalAlreadyCompletedException.
	ErrAlreadyCompleted = errors.New("the approval was already decided")
	// ErrInvalidToken: InvalidApprovalTokenException.
	ErrInvalidToken = errors.New("the approval token is not valid or has expired")
)

// Result is a decision to send with PutApprovalResult.
type Result struct {
	Pipeline, Stage, Action, Token string
	Approved                       bool
	Summary                        string // at most MaxSummary bytes
}

// Outcome is what CodePipeline shows of a decided approval action
// (GetPipelineState: the action's latest execution).
type Outcome struct {
	// Known is false when the stage has moved on to another execution,
	// so the approval's outcome is no longer shown.
	Known bool
	// Status is the action's status: Succeeded (approved), Failed
	// (rejected or expired), InProgress (waiting).
	Status  string
	Summary string // the summary the decision was sent with
	By      string // ARN of who decided (lastUpdatedBy)
}

// MaxSummary is PutApprovalResult's limit on result.summary (512).
const MaxSummary = 512

// CodePipeline is the AWS side (infra/codepipe).
type CodePipeline interface {
	// Execution returns the execution waiting at the approval with token
	// (GetPipelineState, then GetPipelineExecution).
	Execution(ctx context.Context, pipeline, stage, action, token string) (Execution, error)
	// PutApprovalResult decides the approval. CodePipeline's refusals are
	// ErrAlreadyCompleted and ErrInvalidToken; others are wrapped.
	PutApprovalResult(ctx context.Context, r Result) error
	// Outcome reads what CodePipeline recorded for the approval with
	// token of execution executionID ("" when unknown).
	Outcome(ctx context.Context, pipeline, stage, action, token, executionID string) (Outcome, error)
	// Start starts an execution of pipeline (StartPipelineExecution);
	// requestToken makes a retry return the same execution.
	Start(ctx context.Context, pipeline, requestToken string) (executionID string, err error)
}

// ReplyTo says where to answer the person who clicked: an ephemeral
// message in Channel, else a DM.
type ReplyTo struct {
	User    string `json:"user"`
	Channel string `json:"channel,omitempty"`
	// ResponseURL is the /release command's, tried first.
	ResponseURL string `json:"response_url,omitempty"`
}

// Notifier is the Slack side. Texts are plain; the implementation
// escapes them.
type Notifier interface {
	// Post posts the approval card (Approve / Reject buttons while
	// pending, whose value is the approval id) to channel.
	Post(ctx context.Context, a Approval, channel string) (MessageRef, error)
	// Update re-renders the card in place.
	Update(ctx context.Context, a Approval) error
	// Reply answers a person privately.
	Reply(ctx context.Context, to ReplyTo, text string) error
}
