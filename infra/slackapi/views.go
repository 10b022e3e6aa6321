package slackapi

import (
	"context"

	"github.com/slack-go/slack"
)

// OpenView opens modal v for the user whose action produced triggerID
// (views.open). Call it while acknowledging that request: the trigger
// lives TriggerLife, so a retry that could not start within TriggerLife of
// this call fails at once instead (ErrorCode then tells expired_trigger_id
// and exchanged_trigger_id apart from transport errors).
func (c *Client) OpenView(ctx context.Context, triggerID string, v slack.ModalViewRequest) (*slack.View, error) {
	return c.view(ctx, call{method: "views.open", trigger: true}, func(ctx context.Context) (*slack.ViewResponse, error) {
		return c.api.OpenViewContext(ctx, triggerID, v)
	})
}

// PushView pushes modal v onto the open modal stack (views.push); the same
// trigger rules as OpenView apply.
func (c *Client) PushView(ctx context.Context, triggerID string, v slack.ModalViewRequest) (*slack.View, error) {
	return c.view(ctx, call{method: "views.push", trigger: true}, func(ctx context.Context) (*slack.ViewResponse, error) {
		return c.api.PushViewContext(ctx, triggerID, v)
	})
}

// UpdateView replaces the open modal viewID with v (views.update). A
// non-empty hash makes Slack refuse (hash_conflict) if the view changed
// since the caller read it.
func (c *Client) UpdateView(ctx context.Context, viewID, hash string, v slack.ModalViewRequest) (*slack.View, error) {
	return c.view(ctx, call{method: "views.update"}, func(ctx context.Context) (*slack.ViewResponse, error) {
		return c.api.UpdateViewContext(ctx, v, "", hash, viewID)
	})
}

func (c *Client) view(ctx context.Context, op call, fn func(context.Context) (*slack.ViewResponse, error)) (*slack.View, error) {
	var res *slack.ViewResponse
	err := c.do(ctx, op, func(ctx context.Context) error {
		var err error
		res, err = fn(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &res.View, nil
}
