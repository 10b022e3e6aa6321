// Package release approves CodePipeline manual-approval actions from
// Slack: an approval notification (CodePipeline's SNS message) becomes one
// card in the pipeline's approver channel; distinct approvers allowed by
// the Cedar rules (action approve_release on the Pipeline) vote on it, and
// when the quorum is reached, or someone rejects with a reason, the
// decision is sent to CodePipeline (PutApprovalResult). The card is updated
// in place to say what happened, including when the approval was decided
// in the console or its token expired.
package release

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode"
)

// Notification is CodePipeline's manual-approval notification, the body
// of the SNS message an approval action with a NotificationArn publishes.
type Notification struct {
	Region      string `json:"region"`
	ConsoleLink string `json:"consoleLink"`
	Approval    struct {
		PipelineName       string `json:"pipelineName"`
		StageName          string `json:"stageName"`
		ActionName         string `json:"actionName"`
		Token              string `json:"token"`
		Expires            string `json:"expires"`
		ExternalEntityLink string `json:"externalEntityLink"`
		ApprovalReviewLink string `json:"approvalReviewLink"`
		CustomData         string `json:"customData"`
	} `json:"approval"`
}

// IsNotification reports whether an SNS message body is an approval
// notification (a JSON object with approval.token and approval.pipelineName),
// so the worker can tell it from a CloudWatch alarm on a shared topic.
func IsNotification(body string) bool {
	var n Notification
	return json.Unmarshal([]byte(body), &n) == nil && n.Approval.Token != "" && n.Approval.PipelineName != ""
}

// ParseNotification decodes and checks an approval notification.
func ParseNotification(body []byte) (Notification, error) {
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil {
		return n, fmt.Errorf("approval notification: %w", err)
	}
	a := n.Approval
	var missing []string
	for name, v := range map[string]string{"pipelineName": a.PipelineName, "stageName": a.StageName, "actionName": a.ActionName, "token": a.Token} {
		if v == "" {
			missing = append(missing, "approval."+name)
		}
	}
	if len(missing) > 0 {
		return n, fmt.Errorf("approval notification: missing %s", strings.Join(missing, ", "))
	}
	return n, nil
}

// ExpiresAt parses the notification's expiry ("2016-07-07T20:22Z"); zero
// when absent or unreadable.
func (n Notification) ExpiresAt() time.Time {
	for _, layout := range []string{"2006-01-02T15:04Z07:00", time.RFC3339, "2006-01-02T15:04:05Z07:00"} {
		if t, err := time.Parse(layout, n.Approval.Expires); err == nil {
			return t
		}
	}
	return time.Time{}
}

// ApprovalID is the store key of the approval a notification asks for: a
// hash of pipeline, stage, action and token, so every delivery of one
// notification (SNS delivers at least once) names the same approval.
func ApprovalID(pipeline, stage, action, token string) string {
	h := sha256.Sum256([]byte(pipeline + "\x00" + stage + "\x00" + action + "\x00" + token))
	return "rel-" + hex.EncodeToString(h[:10])
}

// Pipeline is one entry of pipelines.yaml: which pipelines (a name or a
// path.Match wildcard) it covers, where their approvals go, how many
// distinct approvers they need at least, and the environment Cedar rules
// see as resource.env.
type Pipeline struct {
	Match     string `json:"match"`
	Channel   string `json:"approver_channel"`
	Approvals int    `json:"approvals"`
	Env       string `json:"env,omitempty"`
	Line      int    `json:"-"` // where it is defined in pipelines.yaml
}

// Pipelines is the loaded pipelines.yaml: the first entry matching a
// pipeline's name applies.
type Pipelines struct {
	File    string
	Entries []Pipeline
}

// Lookup returns the first entry whose match covers name.
func (p *Pipelines) Lookup(name string) (Pipeline, bool) {
	if p == nil {
		return Pipeline{}, false
	}
	for _, e := range p.Entries {
		if ok, err := path.Match(e.Match, name); err == nil && ok {
			return e, true
		}
	}
	return Pipeline{}, false
}

// ValidateMatch checks a pipeline match: a CodePipeline name
// ([A-Za-z0-9.@_-], at most 100) where * and ? may stand for characters.
func ValidateMatch(m string) error {
	if m == "" || len(m) > 100 {
		return errors.New("match must be a pipeline name or wildcard of 1 to 100 characters")
	}
	for _, r := range m {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(".@_-*?", r))) {
			return fmt.Errorf("match %q: %q is not allowed (pipeline names use A-Z a-z 0-9 . @ _ -, wildcards * and ?)", m, r)
		}
	}
	return nil
}

// clean makes user or pipeline text one line of at most max runes.
func clean(s string, max int) string {
	var b strings.Builder
	n, space := 0, false
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		if n >= max {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
