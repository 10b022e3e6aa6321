// Package logctx makes every log line say what it belongs to. A Handler
// wraps tokken's JSON slog.Handler and, for each record logged with a
// context (InfoContext, ErrorContext, LogAttrs, …), adds the identifiers the
// context carries: the Slack/HTTP request id, the Lambda request id, and,
// inside a job, the job id, the job kind and the access request the job
// works on. An operator can then follow one request or one job across every
// line it produced (`jq 'select(.job_id == "…")'`) without each package
// threading ids into its own log calls.
//
// Identifiers reach the context at the entry points: handlers/httpapi and
// handlers/socket set the request id, the Lambda runtime sets its request
// id, and JobHandler (wrapped around the JobMux) sets the job fields. A
// field already present on the record or bound with Logger.With is not
// added twice. Lines logged without a context (Info rather than
// InfoContext) carry only what their logger was bound with.
package logctx

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/tokken/tokken/bot"
)

// Keys of the fields this package adds.
const (
	// KeyRequestID is the id of the HTTP or Socket Mode request.
	KeyRequestID = "request_id"
	// KeyLambdaRequestID is the Lambda invocation's request id, the one the
	// Lambda REPORT line and CloudWatch Logs Insights' @requestId show.
	KeyLambdaRequestID = "aws_request_id"
	// KeyJobID is the id of the job being run.
	KeyJobID = "job_id"
	// KeyJobKind is the kind of the job being run, e.g. "access.expire".
	KeyJobKind = "job_kind"
	// KeyAccessRequestID is the access request a job works on (the
	// "request_id" member of its payload), e.g. "ar-…".
	KeyAccessRequestID = "access_request_id"
)

// Field is one identifier a Handler adds to log records: Key, with the
// value Value finds in the record's context. An empty value is left out.
type Field struct {
	Key   string
	Value func(context.Context) string
}

// Fields returns the standard field set: the request id found by requestID
// (e.g. router.RequestID; nil to leave it out), the Lambda request id, and
// the job id, job kind and access request id set by WithJob.
func Fields(requestID func(context.Context) string) []Field {
	fs := make([]Field, 0, 5)
	if requestID != nil {
		fs = append(fs, Field{Key: KeyRequestID, Value: requestID})
	}
	return append(fs,
		Field{Key: KeyLambdaRequestID, Value: LambdaRequestID},
		Field{Key: KeyJobID, Value: func(ctx context.Context) string { return jobFrom(ctx).id }},
		Field{Key: KeyJobKind, Value: func(ctx context.Context) string { return jobFrom(ctx).kind }},
		Field{Key: KeyAccessRequestID, Value: AccessRequestID},
	)
}

// Handler is a slog.Handler that adds context fields to every record before
// passing it to the wrapped handler. It is safe for concurrent use.
type Handler struct {
	next   slog.Handler
	fields []Field
	// bound holds the keys bound with WithAttrs in the innermost open
	// group (where Handle adds fields), so a field the caller bound itself
	// is not repeated.
	bound []string
}

// New returns a Handler adding fields to the records it passes to next.
// Fields with an empty key or a nil Value are ignored.
func New(next slog.Handler, fields ...Field) *Handler {
	h := &Handler{next: next}
	for _, f := range fields {
		if f.Key != "" && f.Value != nil {
			h.fields = append(h.fields, f)
		}
	}
	return h
}

// Enabled reports whether the wrapped handler handles records of level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle adds the context's fields that are set and not already on the
// record (or bound by WithAttrs), then passes the record on. After
// WithGroup the fields land inside the open group, as every attribute does.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return h.next.Handle(ctx, r)
	}
	var add []slog.Attr
	for _, f := range h.fields {
		v := f.Value(ctx)
		if v == "" || slices.Contains(h.bound, f.Key) || hasAttr(r, f.Key) {
			continue
		}
		add = append(add, slog.String(f.Key, v))
	}
	if len(add) > 0 {
		r = r.Clone()
		r.AddAttrs(add...)
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a Handler whose wrapped handler has attrs bound.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	c.next = h.next.WithAttrs(attrs)
	c.bound = slices.Clone(h.bound)
	for _, a := range attrs {
		c.bound = append(c.bound, a.Key)
	}
	return &c
}

// WithGroup returns a Handler whose wrapped handler has group name open.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.bound = nil // a new group starts with no keys
	return &c
}

// hasAttr reports whether the record carries a top-level attribute key.
func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}

// LambdaRequestID returns the request id of the Lambda invocation ctx
// belongs to ("" outside one).
func LambdaRequestID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc != nil {
		return lc.AwsRequestID
	}
	return ""
}

type jobKey struct{}

// jobInfo is what WithJob stores.
type jobInfo struct {
	id, kind, request string
}

func jobFrom(ctx context.Context) jobInfo {
	j, _ := ctx.Value(jobKey{}).(jobInfo)
	return j
}

// WithJob returns ctx marked as running j: log lines in it carry the job
// id, its kind and, when the payload is a JSON object with a string
// "request_id" member (the access jobs' payload), that access request id.
// A payload of another shape only leaves the request id out.
func WithJob(ctx context.Context, j bot.Job) context.Context {
	info := jobInfo{id: j.ID, kind: j.Kind}
	if len(j.Payload) > 0 && j.Payload[0] == '{' {
		var ref struct {
			RequestID string `json:"request_id"`
		}
		if json.Unmarshal(j.Payload, &ref) == nil {
			info.request = ref.RequestID
		}
	}
	return context.WithValue(ctx, jobKey{}, info)
}

// JobID returns the id of the job ctx runs ("" outside one).
func JobID(ctx context.Context) string { return jobFrom(ctx).id }

// AccessRequestID returns the access request the job ctx runs works on ("" if
// none).
func AccessRequestID(ctx context.Context) string { return jobFrom(ctx).request }

// JobHandler wraps next so every job runs in a context marked by WithJob.
// Wrap the JobMux once and hand the result to every queue (in-process and
// SQS), so each job's log lines carry its ids however it was delivered.
func JobHandler(next bot.JobHandler) bot.JobHandler {
	return func(ctx context.Context, j bot.Job) error {
		return next(WithJob(ctx, j), j)
	}
}
