package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/lambdaevent"
	"github.com/tokken/tokken/infra/config"
	"github.com/tokken/tokken/infra/sqsqueue"
)

// recheckSecretEvery is how often a function waiting for its Slack secret
// reads it again (on an invocation, never more often).
const recheckSecretEvery = time.Minute

// msgUnconfigured is what Slack users and HTTP clients of a function
// waiting for its secret are told.
const msgUnconfigured = "tokken is deployed but not set up yet: its Slack secret still holds the placeholder. " +
	"An administrator puts the Slack app's credentials in it (docs/deploy.md, step 2)."

// unconfigured serves Lambda invocations while the Slack secret still
// holds the template's placeholder (config.ErrSecretNotFilledIn), right
// after the first `sam deploy`. Failing the init instead would fail every
// invocation: the 5-minute sweep would be retried and dead-lettered, the
// error alarms would fire, and Slack would get errors, all for a state the
// deploy guide asks for. So the function starts, said once why it waits,
// and answers: Slack commands with msgUnconfigured, other HTTP requests
// 503, the sweep acknowledged (the next one comes anyway), other jobs left
// on the queue for when tokken runs (never dropped), SNS and EventBridge
// events logged and acknowledged (there is nowhere to deliver them). Every
// recheckSecretEvery at most it reads the secret again, and once the
// credentials are there it builds the app and serves as usual: no
// redeploy is needed.
type unconfigured struct {
	cfg        config.Config // as loaded, before the secret
	log        *slog.Logger
	metricsOut io.Writer
	recheck    time.Duration

	mu      sync.Mutex
	checked time.Time
	app     *app
}

// newUnconfigured logs, once, why the function waits, and returns its
// handler state.
func newUnconfigured(cfg config.Config, log *slog.Logger, metricsOut io.Writer, why error) *unconfigured {
	log.Error("secret not filled in yet: tokken waits for the Slack credentials; until then it answers without doing anything",
		"err", why, "recheck_every", recheckSecretEvery.String())
	return &unconfigured{cfg: cfg, log: log, metricsOut: metricsOut, recheck: recheckSecretEvery, checked: time.Now()}
}

// invoke is the Lambda handler.
func (u *unconfigured) invoke(ctx context.Context, raw json.RawMessage) (any, error) {
	if a := u.ready(ctx); a != nil {
		return a.invokeLambda(ctx, raw)
	}
	return u.answer(ctx, raw)
}

// ready returns the app once the secret is filled in, reading the secret
// again at most every u.recheck.
func (u *unconfigured) ready(ctx context.Context) *app {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.app != nil || time.Since(u.checked) < u.recheck {
		return u.app
	}
	u.checked = time.Now()
	a, err := buildApp(ctx, u.cfg, u.log, metricsTo(u.metricsOut))
	switch {
	case errors.Is(err, config.ErrSecretNotFilledIn):
		return nil // said at start
	case err != nil:
		u.log.Error("the Slack secret changed but tokken cannot start with it; reading it again later", "err", err)
		return nil
	}
	a.start()
	u.log.Info("the Slack secret is filled in: tokken lambda ready", "version", a.info.String(), "config", a.cfg)
	u.app = a
	return a
}

// answer handles one event while the secret is not filled in.
func (u *unconfigured) answer(ctx context.Context, raw json.RawMessage) (any, error) {
	kind, err := lambdaevent.Classify(raw)
	if err != nil {
		return nil, err
	}
	switch kind {
	case lambdaevent.KindFunctionURL, lambdaevent.KindHTTPAPI:
		var req struct {
			RawPath string `json:"rawPath"`
		}
		_ = json.Unmarshal(raw, &req) // the path only picks the answer
		status, body, ctype := http.StatusServiceUnavailable, msgUnconfigured, "text/plain; charset=utf-8"
		if req.RawPath == "/slack/commands" {
			// Shown to the Slack user. Nothing is done, so the unverifiable
			// signature does not matter.
			b, _ := json.Marshal(map[string]string{"response_type": "ephemeral", "text": msgUnconfigured})
			status, body, ctype = http.StatusOK, string(b), "application/json"
		}
		h := map[string]string{"content-type": ctype}
		if kind == lambdaevent.KindHTTPAPI {
			return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: h, Body: body}, nil
		}
		return events.LambdaFunctionURLResponse{StatusCode: status, Headers: h, Body: body}, nil
	case lambdaevent.KindSQS:
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("decode SQS event: %w", err)
		}
		resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
		for _, m := range ev.Records {
			if j, err := sqsqueue.DecodeMessage(m.Body); err == nil && j.Kind == JobSweep {
				continue
			}
			u.log.WarnContext(ctx, "job left on the queue: the Slack secret is not filled in yet", "sqs_message_id", m.MessageId)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
		return resp, nil
	case lambdaevent.KindJob:
		var j bot.Job
		if err := json.Unmarshal(raw, &j); err != nil || j.Kind != JobSweep {
			return nil, fmt.Errorf("job not run: %w", config.ErrSecretNotFilledIn)
		}
		return nil, nil
	default: // SNS, EventBridge: nowhere to deliver them
		u.log.WarnContext(ctx, "event not handled: the Slack secret is not filled in yet", "kind", string(kind))
		return nil, nil
	}
}
