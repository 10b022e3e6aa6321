// Package lambdaevent routes raw AWS Lambda events to tokken's handlers. One
// binary serves every trigger, so the Dispatcher recognises the event by its
// shape: a Function URL or API Gateway HTTP API (v2) request goes to the
// same http.Handler `tokken serve` uses; an SQS batch is decoded into jobs
// for the JobMux, with per-record failures reported back to SQS; SNS
// notifications and EventBridge events go to registered handlers; and a
// bare bot.Job (a Scheduler or sweep payload) runs directly. `tokken invoke`
// feeds events through the same Dispatcher, so every path can be exercised
// locally.
package lambdaevent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/router"
	"github.com/tokken/tokken/infra/config"
)

// SNSHandler handles one SNS notification (e.g. a CloudWatch alarm).
type SNSHandler func(ctx context.Context, msg events.SNSEntity) error

// EventBridgeHandler handles one EventBridge event.
type EventBridgeHandler func(ctx context.Context, ev events.EventBridgeEvent) error

// Deps are what a Dispatcher needs. HTTP is required when the role serves
// HTTP; Jobs and DecodeJob when it runs jobs.
type Deps struct {
	Role config.Role
	// HTTP serves Function URL / HTTP API requests (handlers/httpapi).
	HTTP http.Handler
	// Jobs runs jobs (usually (*bot.JobMux).HandleJob).
	Jobs bot.JobHandler
	// DecodeJob turns an SQS message body into a job (sqsqueue.DecodeMessage).
	DecodeJob func(body string) (bot.Job, error)
	// DeadLetterARN is the ARN of the job dead-letter queue when the
	// worker consumes it: SQS records from that queue are jobs that were
	// given up, handed to GiveUp instead of being run again.
	DeadLetterARN string
	// GiveUp handles one dead job (required with DeadLetterARN). An error
	// leaves the message in the dead-letter queue, to be handed over
	// again after its visibility timeout.
	GiveUp func(ctx context.Context, d DeadJob) error
	Log    *slog.Logger // default slog.Default()
}

// DeadJob is a message from the job dead-letter queue: the job SQS gave up
// on after its receive limit (or one that failed permanently).
type DeadJob struct {
	// Job is the decoded job; when the body is not a job, Job.ID is the
	// SQS message id, Job.Kind is empty and DecodeErr says why.
	Job       bot.Job
	DecodeErr error
	// MessageID is the SQS message id (stable across redeliveries).
	MessageID string
	// Body is the message body as it was sent.
	Body string
	// SentAt is when the job was first sent (SentTimestamp), zero if unknown.
	SentAt time.Time
}

// Dispatcher routes raw Lambda events. Register SNS and EventBridge
// handlers before the first Invoke.
type Dispatcher struct {
	d           Deps
	sns         SNSHandler
	eventBridge map[string]EventBridgeHandler // source + "\x00" + detail-type
}

// New returns a Dispatcher, checking that the role's dependencies are set.
func New(d Deps) (*Dispatcher, error) {
	switch d.Role {
	case config.RoleAll, config.RoleIngress, config.RoleWorker:
	default:
		return nil, fmt.Errorf("lambdaevent: unknown role %q", d.Role)
	}
	if d.Role.ServesHTTP() && d.HTTP == nil {
		return nil, errors.New("lambdaevent: role " + string(d.Role) + " needs an HTTP handler")
	}
	if d.Role.RunsJobs() && (d.Jobs == nil || d.DecodeJob == nil) {
		return nil, errors.New("lambdaevent: role " + string(d.Role) + " needs a job handler and a job decoder")
	}
	if d.DeadLetterARN != "" && d.GiveUp == nil {
		return nil, errors.New("lambdaevent: a dead-letter queue needs a GiveUp handler")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &Dispatcher{d: d, eventBridge: map[string]EventBridgeHandler{}}, nil
}

// HandleSNS sets the handler of SNS notifications.
func (d *Dispatcher) HandleSNS(h SNSHandler) {
	if d.sns != nil {
		panic("lambdaevent: SNS handler registered twice")
	}
	d.sns = h
}

// HandleEventBridge registers h for events of source and detailType (e.g.
// "aws.tag", "Tag Change on Resource").
func (d *Dispatcher) HandleEventBridge(source, detailType string, h EventBridgeHandler) {
	k := source + "\x00" + detailType
	if _, dup := d.eventBridge[k]; dup {
		panic("lambdaevent: EventBridge handler registered twice: " + source + " / " + detailType)
	}
	d.eventBridge[k] = h
}

// Kind names the event shapes the Dispatcher recognises.
type Kind string

// Event kinds.
const (
	KindFunctionURL Kind = "function-url"
	KindHTTPAPI     Kind = "http-api"
	KindSQS         Kind = "sqs"
	KindSNS         Kind = "sns"
	KindEventBridge Kind = "eventbridge"
	KindJob         Kind = "job"
)

func (k Kind) http() bool { return k == KindFunctionURL || k == KindHTTPAPI }

// probe is decoded first to recognise an event. encoding/json matches keys
// case-insensitively, so EventSource covers SQS's "eventSource" and SNS's
// "EventSource".
type probe struct {
	Version        string `json:"version"`
	HTTPMethod     string `json:"httpMethod"` // API Gateway REST (v1): not supported
	RequestContext *struct {
		DomainName string           `json:"domainName"`
		HTTP       *json.RawMessage `json:"http"`
	} `json:"requestContext"`
	Records []struct {
		EventSource string `json:"eventSource"`
	} `json:"Records"`
	Source     string `json:"source"`
	DetailType string `json:"detail-type"`
	Kind       string `json:"kind"`
}

// Classify recognises the shape of a raw event.
func Classify(raw json.RawMessage) (Kind, error) {
	var p probe
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", fmt.Errorf("lambda event is not a JSON object: %w", err)
	}
	switch {
	case p.RequestContext != nil && p.RequestContext.HTTP != nil && p.Version == "2.0":
		if strings.Contains(p.RequestContext.DomainName, ".lambda-url.") {
			return KindFunctionURL, nil
		}
		return KindHTTPAPI, nil
	case p.HTTPMethod != "":
		return "", errors.New("unsupported lambda event: API Gateway REST (payload 1.0) request; use a Function URL or an HTTP API with payload format 2.0")
	case len(p.Records) > 0:
		src := p.Records[0].EventSource
		for _, r := range p.Records[1:] {
			if r.EventSource != src {
				return "", fmt.Errorf("unsupported lambda event: Records from mixed sources %q and %q", src, r.EventSource)
			}
		}
		switch src {
		case "aws:sqs":
			return KindSQS, nil
		case "aws:sns":
			return KindSNS, nil
		}
		return "", fmt.Errorf("unsupported lambda event: Records with event source %q (want aws:sqs or aws:sns)", src)
	case p.Source != "" && p.DetailType != "":
		return KindEventBridge, nil
	case p.Kind != "":
		return KindJob, nil
	}
	return "", fmt.Errorf("unrecognised lambda event with top-level keys %s: want a Function URL/HTTP API request, SQS or SNS Records, an EventBridge event (source, detail-type) or a tokken job (id, kind)", topKeys(raw))
}

func topKeys(raw json.RawMessage) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return "(not an object)"
	}
	keys := slices.Sorted(maps.Keys(m))
	if len(keys) > 12 {
		keys = append(keys[:12], "…")
	}
	return "[" + strings.Join(keys, " ") + "]"
}

// Invoke handles one raw event and returns the response Lambda expects for
// it: events.LambdaFunctionURLResponse or events.APIGatewayV2HTTPResponse
// for HTTP, events.SQSEventResponse for SQS, nil otherwise. Its signature
// fits lambda.Start.
func (d *Dispatcher) Invoke(ctx context.Context, raw json.RawMessage) (any, error) {
	kind, err := Classify(raw)
	if err != nil {
		return nil, err
	}
	if kind.http() && !d.d.Role.ServesHTTP() {
		return nil, fmt.Errorf("TOKKEN_ROLE=%s refuses HTTP requests (%s event); send them to the ingress function", d.d.Role, kind)
	}
	if !kind.http() && !d.d.Role.RunsJobs() {
		return nil, fmt.Errorf("TOKKEN_ROLE=%s accepts only HTTP requests, got a %s event; send it to the worker function", d.d.Role, kind)
	}
	switch kind {
	case KindFunctionURL:
		var req events.LambdaFunctionURLRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, fmt.Errorf("decode Function URL request: %w", err)
		}
		return d.functionURL(ctx, req), nil
	case KindHTTPAPI:
		var req events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, fmt.Errorf("decode HTTP API request: %w", err)
		}
		return d.httpAPI(ctx, req), nil
	case KindSQS:
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("decode SQS event: %w", err)
		}
		return d.sqs(ctx, ev), nil
	case KindSNS:
		var ev events.SNSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("decode SNS event: %w", err)
		}
		return nil, d.snsEvent(ctx, ev)
	case KindEventBridge:
		var ev events.EventBridgeEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("decode EventBridge event: %w", err)
		}
		return nil, d.eventBridgeEvent(ctx, ev)
	default: // KindJob
		var j bot.Job
		if err := json.Unmarshal(raw, &j); err != nil {
			return nil, fmt.Errorf("decode job: %w", err)
		}
		return nil, d.job(ctx, j)
	}
}

func (d *Dispatcher) sqs(ctx context.Context, ev events.SQSEvent) events.SQSEventResponse {
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for _, m := range ev.Records {
		log := d.d.Log.With("sqs_message_id", m.MessageId)
		if err := ctx.Err(); err != nil {
			// Out of time: SQS redelivers what we did not finish.
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			continue
		}
		if d.d.DeadLetterARN != "" && m.EventSourceARN == d.d.DeadLetterARN {
			if err := d.deadJob(ctx, log, m); err != nil {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			}
			continue
		}
		j, err := d.d.DecodeJob(m.Body)
		if err != nil {
			// Kept as a failure so that the redrive policy moves it to the
			// dead-letter queue, where it can be inspected: never dropped.
			log.ErrorContext(ctx, "undecodable job message", "err", err, "receive_count", m.Attributes["ApproximateReceiveCount"])
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			continue
		}
		if err := d.runJob(ctx, log, j); err != nil {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp
}

// deadJob hands a message of the dead-letter queue to GiveUp.
func (d *Dispatcher) deadJob(ctx context.Context, log *slog.Logger, m events.SQSMessage) (err error) {
	dj := DeadJob{MessageID: m.MessageId, Body: m.Body}
	if ms, perr := strconv.ParseInt(m.Attributes["SentTimestamp"], 10, 64); perr == nil {
		dj.SentAt = time.UnixMilli(ms).UTC()
	}
	dj.Job, dj.DecodeErr = d.d.DecodeJob(m.Body)
	if dj.DecodeErr != nil {
		dj.Job = bot.Job{ID: m.MessageId}
	}
	log = log.With("job_id", dj.Job.ID, "kind", dj.Job.Kind)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("give up job %s: panicked: %v", dj.Job.ID, p)
		}
		if err != nil {
			log.ErrorContext(ctx, "dead job not handled; it stays in the dead-letter queue", "err", err)
		}
	}()
	return d.d.GiveUp(ctx, dj)
}

// runJob runs j and logs the outcome.
func (d *Dispatcher) runJob(ctx context.Context, log *slog.Logger, j bot.Job) error {
	log = log.With("job_id", j.ID, "kind", j.Kind)
	err := d.safeJob(ctx, j)
	switch {
	case err == nil:
		log.DebugContext(ctx, "job done")
	case bot.IsPermanent(err):
		log.ErrorContext(ctx, "job failed permanently", "err", err)
	default:
		log.WarnContext(ctx, "job failed; it will be retried", "err", err)
	}
	return err
}

func (d *Dispatcher) safeJob(ctx context.Context, j bot.Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = bot.Permanent(fmt.Errorf("job %s panicked: %v", j.ID, p))
		}
	}()
	return d.d.Jobs(ctx, j)
}

// job runs a job invoked directly (Scheduler or sweep payload). A permanent
// failure is logged and not returned: Lambda's retries of an asynchronous
// invocation could not fix it.
func (d *Dispatcher) job(ctx context.Context, j bot.Job) error {
	err := d.runJob(ctx, d.d.Log, j)
	if err != nil && !bot.IsPermanent(err) {
		return fmt.Errorf("job %s (%s): %w", j.ID, j.Kind, err)
	}
	return nil
}

func (d *Dispatcher) snsEvent(ctx context.Context, ev events.SNSEvent) error {
	if d.sns == nil {
		return fmt.Errorf("no handler for SNS notifications (topic %s)", ev.Records[0].SNS.TopicArn)
	}
	var errs []error
	for _, r := range ev.Records {
		if err := d.sns(ctx, r.SNS); err != nil {
			errs = append(errs, fmt.Errorf("SNS message %s from %s: %w", r.SNS.MessageID, r.SNS.TopicArn, err))
		}
	}
	return errors.Join(errs...)
}

func (d *Dispatcher) eventBridgeEvent(ctx context.Context, ev events.EventBridgeEvent) error {
	h, ok := d.eventBridge[ev.Source+"\x00"+ev.DetailType]
	if !ok {
		return fmt.Errorf("no handler for EventBridge events of source %q, detail-type %q", ev.Source, ev.DetailType)
	}
	if err := h(ctx, ev); err != nil {
		return fmt.Errorf("EventBridge event %s (%s / %s): %w", ev.ID, ev.Source, ev.DetailType, err)
	}
	return nil
}

// httpRequest is what the Function URL and HTTP API v2 formats share.
type httpRequest struct {
	method, rawPath, rawQuery, host, sourceIP, requestID string
	headers                                              map[string]string
	cookies                                              []string
	body                                                 string
	base64                                               bool
}

// httpResponse is what both response formats carry.
type httpResponse struct {
	status  int
	headers map[string]string
	cookies []string
	body    string
	base64  bool
}

func (d *Dispatcher) functionURL(ctx context.Context, r events.LambdaFunctionURLRequest) events.LambdaFunctionURLResponse {
	resp := d.serveHTTP(ctx, httpRequest{
		method: r.RequestContext.HTTP.Method, rawPath: r.RawPath, rawQuery: r.RawQueryString,
		host: r.RequestContext.DomainName, sourceIP: r.RequestContext.HTTP.SourceIP, requestID: r.RequestContext.RequestID,
		headers: r.Headers, cookies: r.Cookies, body: r.Body, base64: r.IsBase64Encoded,
	})
	return events.LambdaFunctionURLResponse{StatusCode: resp.status, Headers: resp.headers, Cookies: resp.cookies, Body: resp.body, IsBase64Encoded: resp.base64}
}

func (d *Dispatcher) httpAPI(ctx context.Context, r events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	resp := d.serveHTTP(ctx, httpRequest{
		method: r.RequestContext.HTTP.Method, rawPath: r.RawPath, rawQuery: r.RawQueryString,
		host: r.RequestContext.DomainName, sourceIP: r.RequestContext.HTTP.SourceIP, requestID: r.RequestContext.RequestID,
		headers: r.Headers, cookies: r.Cookies, body: r.Body, base64: r.IsBase64Encoded,
	})
	return events.APIGatewayV2HTTPResponse{StatusCode: resp.status, Headers: resp.headers, Cookies: resp.cookies, Body: resp.body, IsBase64Encoded: resp.base64}
}

// serveHTTP converts the request, runs the handler and converts the answer.
// Conversion failures are answered 400 rather than failing the invocation.
func (d *Dispatcher) serveHTTP(ctx context.Context, in httpRequest) httpResponse {
	// A Lambda function is frozen once it answers: work the handler
	// defers until after its ack (router.AfterAck) runs before.
	req, err := toHTTPRequest(router.Frozen(ctx), in)
	if err != nil {
		return httpResponse{status: http.StatusBadRequest, headers: map[string]string{"content-type": "text/plain; charset=utf-8"}, body: err.Error() + "\n"}
	}
	w := &responseWriter{header: http.Header{}}
	d.d.HTTP.ServeHTTP(w, req)
	return w.result()
}

func toHTTPRequest(ctx context.Context, in httpRequest) (*http.Request, error) {
	body := []byte(in.body)
	if in.base64 {
		var err error
		if body, err = base64.StdEncoding.DecodeString(in.body); err != nil {
			return nil, fmt.Errorf("malformed request: body is not valid base64: %w", err)
		}
	}
	path := in.rawPath
	if path == "" {
		path = "/"
	}
	u := &url.URL{Scheme: "https", Host: in.host, RawQuery: in.rawQuery}
	if p, err := url.PathUnescape(path); err == nil {
		u.Path, u.RawPath = p, path
	} else {
		return nil, fmt.Errorf("malformed request path %q: %w", path, err)
	}
	method := in.method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("malformed request: %w", err)
	}
	for k, v := range in.headers {
		req.Header.Set(k, v) // a comma-joined value is one header line: HTTP semantics keep it equivalent
	}
	if len(in.cookies) > 0 {
		req.Header.Set("Cookie", strings.Join(in.cookies, "; "))
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
	}
	if req.Header.Get("X-Request-Id") == "" && in.requestID != "" {
		req.Header.Set("X-Request-Id", in.requestID)
	}
	req.RemoteAddr = in.sourceIP
	req.ContentLength = int64(len(body))
	req.RequestURI = u.RequestURI()
	return req, nil
}

// responseWriter buffers a response for conversion into a Lambda response.
type responseWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

func (w *responseWriter) result() httpResponse {
	r := httpResponse{status: w.status, headers: map[string]string{}}
	if r.status == 0 {
		r.status = http.StatusOK
	}
	for k, vs := range w.header {
		if http.CanonicalHeaderKey(k) == "Set-Cookie" {
			r.cookies = append(r.cookies, vs...)
			continue
		}
		r.headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	body := w.body.Bytes()
	if isText(w.header.Get("Content-Type"), body) {
		r.body = string(body)
	} else {
		r.body, r.base64 = base64.StdEncoding.EncodeToString(body), true
	}
	return r
}

// isText reports whether a body can travel as a JSON string unchanged.
func isText(contentType string, body []byte) bool {
	if len(body) == 0 {
		return true
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	textual := mt == "" || strings.HasPrefix(mt, "text/") || mt == "application/json" ||
		mt == "application/x-www-form-urlencoded" || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "xml")
	return textual && utf8.Valid(body)
}
