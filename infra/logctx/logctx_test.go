package logctx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/tokken/tokken/bot"
)

type reqKey struct{}

func testRequestID(ctx context.Context) string {
	id, _ := ctx.Value(reqKey{}).(string)
	return id
}

// newTestLogger returns a logger writing JSON through a Handler into buf.
func newTestLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(New(slog.NewJSONHandler(buf, nil), Fields(testRequestID)...))
}

// lines decodes buf as JSON lines.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, l)
		}
		out = append(out, m)
	}
	return out
}

func TestHandlerAddsContextFields(t *testing.T) {
	lambdaCtx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "lambda-1"})
	accessJob := bot.Job{ID: "expire/ar-1/1700000000", Kind: "access.expire", Payload: json.RawMessage(`{"request_id":"ar-1"}`)}
	tests := []struct {
		name string
		ctx  context.Context
		log  func(*slog.Logger, context.Context)
		want map[string]string // key -> value; "" means absent
	}{
		{
			name: "no context values",
			ctx:  context.Background(),
			want: map[string]string{KeyRequestID: "", KeyJobID: "", KeyLambdaRequestID: ""},
		},
		{
			name: "request id",
			ctx:  context.WithValue(context.Background(), reqKey{}, "req-1"),
			want: map[string]string{KeyRequestID: "req-1", KeyJobID: ""},
		},
		{
			name: "lambda request id and request id",
			ctx:  context.WithValue(lambdaCtx, reqKey{}, "req-2"),
			want: map[string]string{KeyRequestID: "req-2", KeyLambdaRequestID: "lambda-1"},
		},
		{
			name: "access job",
			ctx:  WithJob(context.Background(), accessJob),
			want: map[string]string{KeyJobID: accessJob.ID, KeyJobKind: "access.expire", KeyAccessRequestID: "ar-1", KeyRequestID: ""},
		},
		{
			name: "job with a payload of another shape",
			ctx:  WithJob(context.Background(), bot.Job{ID: "j1", Kind: "alert.sync", Payload: json.RawMessage(`["x"]`)}),
			want: map[string]string{KeyJobID: "j1", KeyJobKind: "alert.sync", KeyAccessRequestID: ""},
		},
		{
			name: "job whose request_id is not a string",
			ctx:  WithJob(context.Background(), bot.Job{ID: "j2", Kind: "k", Payload: json.RawMessage(`{"request_id":42}`)}),
			want: map[string]string{KeyJobID: "j2", KeyAccessRequestID: ""},
		},
		{
			name: "field on the record wins",
			ctx:  context.WithValue(context.Background(), reqKey{}, "from-ctx"),
			log: func(l *slog.Logger, ctx context.Context) {
				l.InfoContext(ctx, "m", KeyRequestID, "from-record")
			},
			want: map[string]string{KeyRequestID: "from-record"},
		},
		{
			name: "field bound with With wins",
			ctx:  context.WithValue(context.Background(), reqKey{}, "from-ctx"),
			log: func(l *slog.Logger, ctx context.Context) {
				l.With(KeyRequestID, "bound").InfoContext(ctx, "m")
			},
			want: map[string]string{KeyRequestID: "bound"},
		},
		{
			name: "logged without context",
			ctx:  context.WithValue(context.Background(), reqKey{}, "req-3"),
			log:  func(l *slog.Logger, _ context.Context) { l.Info("m") },
			want: map[string]string{KeyRequestID: ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := newTestLogger(&buf)
			if tt.log != nil {
				tt.log(l, tt.ctx)
			} else {
				l.InfoContext(tt.ctx, "m")
			}
			got := lines(t, &buf)
			if len(got) != 1 {
				t.Fatalf("got %d lines, want 1:\n%s", len(got), buf.String())
			}
			for k, want := range tt.want {
				v, ok := got[0][k]
				if want == "" {
					if ok {
						t.Errorf("%s = %v, want absent", k, v)
					}
					continue
				}
				if v != want {
					t.Errorf("%s = %v, want %q", k, v, want)
				}
			}
			// No key appears twice in the raw line.
			if n := strings.Count(buf.String(), `"`+KeyRequestID+`"`); n > 1 {
				t.Errorf("%s appears %d times: %s", KeyRequestID, n, buf.String())
			}
		})
	}
}

func TestHandlerGroupsAndLevels(t *testing.T) {
	var buf bytes.Buffer
	h := New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}), Fields(testRequestID)...)
	l := slog.New(h)
	ctx := context.WithValue(context.Background(), reqKey{}, "req-g")

	if l.Enabled(ctx, slog.LevelDebug) {
		t.Error("Enabled(debug) = true through an info-level handler")
	}
	l.DebugContext(ctx, "hidden")
	// Fields land in the innermost group, like every attribute; a key
	// bound in that group is not repeated, one bound outside it is.
	l.With(KeyRequestID, "outer").WithGroup("g").InfoContext(ctx, "outer bound")
	l.WithGroup("g").With(KeyRequestID, "inner").InfoContext(ctx, "inner bound")
	got := lines(t, &buf)
	if len(got) != 2 {
		t.Fatalf("got %d lines, want 2 (debug filtered):\n%s", len(got), buf.String())
	}
	for i, want := range []string{"req-g", "inner"} {
		g, ok := got[i]["g"].(map[string]any)
		if !ok {
			t.Fatalf("line %d: no group g in %v", i, got[i])
		}
		if g[KeyRequestID] != want {
			t.Errorf("line %d: g.request_id = %v, want %q", i, g[KeyRequestID], want)
		}
	}
	for i, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if n := strings.Count(l, `"`+KeyRequestID+`"`); i == 1 && n != 1 {
			t.Errorf("line %d has request_id %d times: %s", i, n, l)
		}
	}
}

func TestNewIgnoresIncompleteFields(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(New(slog.NewJSONHandler(&buf, nil), Field{Key: "", Value: testRequestID}, Field{Key: "x"}))
	l.InfoContext(context.WithValue(context.Background(), reqKey{}, "r"), "m")
	m := lines(t, &buf)[0]
	if _, ok := m["x"]; ok {
		t.Errorf("field with nil Value was added: %v", m)
	}
	if _, ok := m[""]; ok {
		t.Errorf("field with empty key was added: %v", m)
	}
}

func TestFieldsWithoutRequestID(t *testing.T) {
	for _, f := range Fields(nil) {
		if f.Key == KeyRequestID {
			t.Fatalf("Fields(nil) includes %s", KeyRequestID)
		}
	}
	if n := len(Fields(testRequestID)); n != 5 {
		t.Fatalf("Fields(requestID) has %d fields, want 5", n)
	}
}

func TestJobHandlerMarksContext(t *testing.T) {
	var buf bytes.Buffer
	l := newTestLogger(&buf)
	want := errors.New("boom")
	h := JobHandler(func(ctx context.Context, j bot.Job) error {
		if got := JobID(ctx); got != j.ID {
			t.Errorf("JobID = %q, want %q", got, j.ID)
		}
		if got := AccessRequestID(ctx); got != "ar-9" {
			t.Errorf("AccessRequestID = %q, want ar-9", got)
		}
		l.ErrorContext(ctx, "job failed")
		return want
	})
	err := h(context.Background(), bot.Job{ID: "activate/ar-9", Kind: "access.activate", Payload: json.RawMessage(`{"request_id":"ar-9"}`)})
	if !errors.Is(err, want) {
		t.Fatalf("JobHandler changed the error: %v", err)
	}
	m := lines(t, &buf)[0]
	if m[KeyJobID] != "activate/ar-9" || m[KeyAccessRequestID] != "ar-9" || m[KeyJobKind] != "access.activate" {
		t.Errorf("job fields missing: %v", m)
	}
	if JobID(context.Background()) != "" || AccessRequestID(context.Background()) != "" || LambdaRequestID(context.Background()) != "" {
		t.Error("ids found outside a job or invocation")
	}
}

// TestHandlerConcurrent logs from many goroutines through one Handler
// (run with -race): derived handlers must not share mutable state.
func TestHandlerConcurrent(t *testing.T) {
	var buf bytes.Buffer // the JSONHandler serialises the writes
	base := slog.New(New(slog.NewJSONHandler(&buf, nil), Fields(testRequestID)...))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := base.With("worker", i)
			ctx := WithJob(context.Background(), bot.Job{ID: "j", Kind: "k", Payload: json.RawMessage(`{"request_id":"ar"}`)})
			for range 50 {
				l.With("n", 1).InfoContext(ctx, "m")
				l.LogAttrs(ctx, slog.LevelInfo, "attrs", slog.Int("n", 2))
			}
		}()
	}
	wg.Wait()
	for _, m := range lines(t, &buf) {
		if m[KeyJobID] != "j" || m[KeyAccessRequestID] != "ar" {
			t.Fatalf("line without job fields: %v", m)
		}
	}
}
