package bot

import (
	"context"
	"time"
)

// Action is something a principal may be allowed to do. Policies (Cedar
// rules under policies/) decide; the requester never counts as an approver of
// their own request, whatever the rules say.
type Action string

// Actions known to tokken.
const (
	ActionRequest     Action = "request"
	ActionApprove     Action = "approve"
	ActionBreakGlass  Action = "break_glass"
	ActionRevoke      Action = "revoke"
	ActionExtend      Action = "extend"
	ActionReview      Action = "review"
	ActionDomainJoin  Action = "domain_join"
	ActionDomainLeave Action = "domain_leave"
	ActionAlertAct    Action = "alert_act" // ack, silence, close
	// ActionApproveRelease approves or rejects a CodePipeline manual
	// approval (bot/release); its resource is the pipeline.
	ActionApproveRelease Action = "approve_release"
	// ActionStartRelease starts an execution of a pipeline (/release).
	ActionStartRelease Action = "start_release"
)

// Principal is the Slack user a decision is about.
type Principal struct {
	ID    string // Slack user id, e.g. U2CERLKJA
	Email string // from users.info; may be empty
	// SlackGroups are the ids of the Slack user groups the user belongs to.
	SlackGroups []string
}

// Target is a resource an action touches (an EC2 instance), with its tags.
type Target struct {
	ID   string            `json:"id"`
	Tags map[string]string `json:"tags,omitempty"`
}

// AuthzQuery is one question to the policy engine.
type AuthzQuery struct {
	Principal Principal
	Action    Action
	Profile   string // access profile name, if any
	Duration  time.Duration
	Targets   []Target
	Now       time.Time
	// Context carries further attributes (e.g. "env": "prod").
	Context map[string]string
}

// Decision is the policy engine's answer. Reasons name the rules that made
// it (e.g. `permit policies/access.cedar:12`), or say that no rule permitted
// the action; they are shown to users when a request is refused.
type Decision struct {
	Allow   bool
	Reasons []string
	// Approvals is how many distinct approvers, never counting the
	// requester, an allowed request, extension or domain operation needs
	// before it takes effect (0: none). Other actions report 0.
	Approvals int
}

// Authorizer answers AuthzQuery. Implemented by package policies.
type Authorizer interface {
	Authorize(ctx context.Context, q AuthzQuery) (Decision, error)
}
