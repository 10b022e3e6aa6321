package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"
)

// ParseInteraction decodes an interaction payload (the "payload" form
// field Slack posts to /slack/interactions and /slack/options, or a Socket
// Mode envelope's payload) with slack-go's decoder.
func ParseInteraction(payload []byte) (slack.InteractionCallback, error) {
	var ic slack.InteractionCallback
	if len(payload) == 0 {
		return ic, errors.New("missing payload")
	}
	if err := json.Unmarshal(payload, &ic); err != nil {
		return slack.InteractionCallback{}, err
	}
	if ic.Type == "" {
		return slack.InteractionCallback{}, errors.New("missing type")
	}
	return ic, nil
}

// envelope is the outer Events API body.
type envelope struct {
	Type      string `json:"type"`
	Challenge string `json:"challenge"`
	EventID   string `json:"event_id"`
	EventTime int64  `json:"event_time"`
	TeamID    string `json:"team_id"`
	Event     json.RawMessage
}

// ParseEvent decodes an Events API body. It returns the url_verification
// challenge, or the event of an event_callback; other envelope types
// (app_rate_limited) return neither and no error.
func ParseEvent(body []byte) (challenge string, ev *Event, err error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return "", nil, fmt.Errorf("malformed event: %w", err)
	}
	switch env.Type {
	case "url_verification":
		if env.Challenge == "" {
			return "", nil, errors.New("malformed event: url_verification without challenge")
		}
		return env.Challenge, nil, nil
	case "event_callback":
		var inner struct {
			Type string `json:"type"`
		}
		if len(env.Event) == 0 || json.Unmarshal(env.Event, &inner) != nil || inner.Type == "" {
			return "", nil, errors.New("malformed event: event_callback without an event type")
		}
		if env.EventID == "" {
			return "", nil, errors.New("malformed event: event_callback without event_id")
		}
		return "", &Event{ID: env.EventID, Type: inner.Type, TeamID: env.TeamID, Time: time.Unix(env.EventTime, 0).UTC(), Inner: env.Event}, nil
	case "":
		return "", nil, errors.New("malformed event: missing type")
	}
	return "", nil, nil
}
