package logctx

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/tokken/tokken/bot"
)

// member is one hand-encoded attribute of a LogJSON line and its slog form.
type member struct {
	key string
	str string
	num int64
	isN bool
}

func (m member) attr() slog.Attr {
	if m.isN {
		return slog.Int64(m.key, m.num)
	}
	return slog.String(m.key, m.str)
}

func encode(ms []member) ([]byte, []string) {
	var b []byte
	var keys []string
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, m.key)
		b = append(b, ':')
		if m.isN {
			b = strconv.AppendInt(b, m.num, 10)
		} else {
			b = AppendString(b, m.str)
		}
		keys = append(keys, m.key)
	}
	return b, keys
}

var lineTime = regexp.MustCompile(`^\{"time":"[^"]+",`)

// TestLogJSONMatchesHandle: a LogJSON line is byte for byte the line
// LogAttrs writes for the same attributes, whatever the bound attributes,
// context fields and characters.
func TestLogJSONMatchesHandle(t *testing.T) {
	reqCtx := context.WithValue(context.Background(), reqKey{}, "req-1")
	lambdaCtx := lambdacontext.NewContext(reqCtx, &lambdacontext.LambdaContext{AwsRequestID: "aws-\"1\""})
	jobCtx := WithJob(context.Background(), bot.Job{ID: "job-1", Kind: "access.expire", Payload: []byte(`{"request_id":"ar-1"}`)})
	weird := "quote\" back\\ nl\n tab\t cr\r nul\x00 del\x7f <html>&amp; é 日本 \u2028\u2029 bad\xff\xfe end"
	members := []member{
		{key: "request_id", str: "req-9"},
		{key: "path", str: weird},
		{key: "status", num: 200, isN: true},
		{key: "neg", num: -12, isN: true},
		{key: "k\"ey", str: ""},
	}
	bind := func(l *slog.Logger) *slog.Logger {
		return l.With("app", "tokken", "role", "all",
			"g", slog.GroupValue(slog.Int("a", 1), slog.String("b", weird)),
			"t", time.Date(2026, 12, 6, 1, 2, 3, 4, time.UTC), "err", errors.New("e\"rr"),
			"f", 1.5, "d", time.Second, "m", map[string]int{"x": 1})
	}
	tests := []struct {
		name    string
		ctx     context.Context
		logger  func(*slog.Logger) *slog.Logger
		level   slog.Level
		msg     string
		members []member
	}{
		{"bare", context.Background(), nil, slog.LevelInfo, "http request", members},
		{"no members", reqCtx, nil, slog.LevelInfo, "m", nil},
		{"bound", reqCtx, bind, slog.LevelWarn, "http request", members},
		{"request id given", reqCtx, bind, slog.LevelError, weird, members},
		{"request id from context", reqCtx, bind, slog.LevelInfo, "m", members[1:]},
		{"lambda", lambdaCtx, bind, slog.LevelInfo + 2, "m", members},
		{"job", jobCtx, bind, slog.LevelDebug, "m", members[1:]},
		{"job bound", jobCtx, func(l *slog.Logger) *slog.Logger { return l.With(KeyJobID, "mine") }, slog.LevelInfo, "m", members},
		{"nil context", nil, bind, slog.LevelInfo, "m", members},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var viaRecord, viaJSON bytes.Buffer
			opts := &slog.HandlerOptions{Level: slog.LevelDebug}
			a := slog.New(NewJSON(&viaRecord, opts, Fields(testRequestID)...))
			b := slog.New(NewJSON(&viaJSON, opts, Fields(testRequestID)...))
			if tt.logger != nil {
				a, b = tt.logger(a), tt.logger(b)
			}
			attrs := make([]slog.Attr, 0, len(tt.members))
			for _, m := range tt.members {
				attrs = append(attrs, m.attr())
			}
			a.LogAttrs(tt.ctx, tt.level, tt.msg, attrs...) //nolint:staticcheck // a nil context is a case
			enc, keys := encode(tt.members)
			if !b.Handler().(*Handler).LogJSON(tt.ctx, tt.level, tt.msg, enc, keys...) {
				t.Fatal("LogJSON refused")
			}
			want := lineTime.ReplaceAllString(viaRecord.String(), `{"time":"T",`)
			got := lineTime.ReplaceAllString(viaJSON.String(), `{"time":"T",`)
			if got != want || want == viaRecord.String() {
				t.Errorf("LogJSON wrote\n%s\nHandle wrote\n%s", viaJSON.String(), viaRecord.String())
			}
			lines(t, &viaJSON) // valid JSON
		})
	}
}

func TestLogJSONTimeIsNow(t *testing.T) {
	var buf bytes.Buffer
	before := time.Now()
	if !NewJSON(&buf, nil).LogJSON(context.Background(), slog.LevelInfo, "m", nil) {
		t.Fatal("LogJSON refused")
	}
	after := time.Now()
	at, err := time.Parse(time.RFC3339Nano, lines(t, &buf)[0]["time"].(string))
	if err != nil || at.Before(before.Round(0)) || at.After(after.Round(0)) {
		t.Errorf("time %v (%v) not within [%v, %v]", at, err, before, after)
	}
}

// TestLogJSONRefuses: where LogJSON cannot write what Handle would, it
// writes nothing and says so; a level that is off is done with.
func TestLogJSONRefuses(t *testing.T) {
	var buf bytes.Buffer
	replace := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }}
	tests := []struct {
		name string
		h    slog.Handler
		want bool
	}{
		{"New", New(slog.NewJSONHandler(&buf, nil)), false},
		{"ReplaceAttr", NewJSON(&buf, replace), false},
		{"AddSource", NewJSON(&buf, &slog.HandlerOptions{AddSource: true}), false},
		{"group", NewJSON(&buf, nil).WithGroup("g"), false},
		{"attrs in a group", NewJSON(&buf, nil).WithGroup("g").WithAttrs([]slog.Attr{slog.Int("a", 1)}), false},
		{"level off", NewJSON(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}), true},
		{"empty group name", NewJSON(&buf, nil).WithGroup(""), true},
	}
	for _, tt := range tests {
		buf.Reset()
		got := tt.h.(*Handler).LogJSON(context.Background(), slog.LevelInfo, "m", []byte(`"a":1`), "a")
		if got != tt.want || (buf.Len() > 0) != (tt.name == "empty group name") {
			t.Errorf("%s: LogJSON = %v, wrote %q", tt.name, got, buf.String())
		}
	}
}

// FuzzAppendString: AppendString escapes as slog's JSONHandler does.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\", "\x00\x1f\x7f\n\r\t", "é日本\u2028\u2029", "bad\xff\xc3", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(g []string, a slog.Attr) slog.Attr {
			if len(g) == 0 && a.Key != "k" {
				return slog.Attr{}
			}
			return a
		}})).Info("", "k", s)
		want := buf.String()
		got := `{"k":` + string(AppendString(nil, s)) + "}\n"
		if got != want {
			t.Fatalf("AppendString(%q) = %s, slog writes %s", s, got, want)
		}
	})
}
