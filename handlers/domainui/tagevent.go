package domainui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/domainjoin"
)

// EventBridge identity of the events TagEvent handles.
const (
	TagEventSource     = "aws.tag"
	TagEventDetailType = "Tag Change on Resource"
)

// tagDetail is the detail of a "Tag Change on Resource" event.
type tagDetail struct {
	ChangedTagKeys []string          `json:"changed-tag-keys"`
	Service        string            `json:"service"`
	ResourceType   string            `json:"resource-type"`
	Tags           map[string]string `json:"tags"`
}

// ErrNotInstance reports a well-formed tag-change event about something
// other than an EC2 instance: not an error, just not ours.
var ErrNotInstance = errors.New("not an EC2 instance tag change")

// ParseTagEvent maps an EventBridge "Tag Change on Resource" event to the
// domainjoin.TagEvent it carries: the instance id from resources[0] (an
// instance ARN) and the tags after the change (detail.tags). changed is
// detail.changed-tag-keys. Events about other resources give
// ErrNotInstance; malformed ones a descriptive error.
func ParseTagEvent(ev events.EventBridgeEvent) (te domainjoin.TagEvent, changed []string, err error) {
	if ev.Source != TagEventSource || ev.DetailType != TagEventDetailType {
		return te, nil, fmt.Errorf("tag event: source %q, detail-type %q: want %q, %q", ev.Source, ev.DetailType, TagEventSource, TagEventDetailType)
	}
	var d tagDetail
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		return te, nil, fmt.Errorf("tag event %s: detail: %w", ev.ID, err)
	}
	if d.Service != "ec2" || d.ResourceType != "instance" {
		return te, nil, ErrNotInstance
	}
	if len(ev.Resources) != 1 {
		return te, nil, fmt.Errorf("tag event %s: want one resource, got %d", ev.ID, len(ev.Resources))
	}
	id, err := instanceFromARN(ev.Resources[0])
	if err != nil {
		return te, nil, fmt.Errorf("tag event %s: %w", ev.ID, err)
	}
	tags := d.Tags
	if tags == nil {
		tags = map[string]string{} // every tag removed
	}
	return domainjoin.TagEvent{InstanceID: id, Tags: tags, At: ev.Time}, d.ChangedTagKeys, nil
}

// instanceFromARN returns the instance id of an EC2 instance ARN,
// arn:<partition>:ec2:<region>:<account>:instance/i-….
func instanceFromARN(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "ec2" {
		return "", fmt.Errorf("resource %q is not an EC2 ARN", arn)
	}
	id, ok := strings.CutPrefix(parts[5], "instance/")
	if !ok || !bot.IsInstanceID(id) {
		return "", fmt.Errorf("resource %q is not an instance ARN", arn)
	}
	return id, nil
}

// TagEvent handles one EventBridge "Tag Change on Resource" event (register
// it for TagEventSource / TagEventDetailType): events that change one of the
// scheme's keys on an instance become a domain.tag_event job, whose id is
// derived from the event id so a redelivered event is the same job. Events
// that are not about an instance or change none of those keys are ignored;
// malformed events are logged and dropped, since retrying cannot fix them.
func (h *Handler) TagEvent(ctx context.Context, ev events.EventBridgeEvent) error {
	te, changed, err := ParseTagEvent(ev)
	switch {
	case errors.Is(err, ErrNotInstance):
		return nil
	case err != nil:
		h.log.WarnContext(ctx, "malformed tag-change event dropped", "event_id", ev.ID, "err", err)
		return nil
	}
	keys := h.tags.ReadKeys()
	if len(changed) > 0 && !slices.ContainsFunc(changed, func(k string) bool { return slices.Contains(keys, k) }) {
		return nil
	}
	jobID := "tag-event/" + ev.ID
	if ev.ID == "" {
		jobID = bot.NewID("tag-event/")
	}
	job, err := bot.NewJob(jobID, domainjoin.KindTagEvent, te)
	if err != nil {
		return err
	}
	if err := h.queue.Enqueue(ctx, job); err != nil {
		return fmt.Errorf("enqueue tag event %s for %s: %w", ev.ID, te.InstanceID, err)
	}
	h.log.InfoContext(ctx, "tag change queued", "event_id", ev.ID, "instance", te.InstanceID, "changed", changed)
	return nil
}
