package metrics

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/access"
)

var fixedNow = time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

// newTest returns a Recorder writing into a buffer, with a fixed clock.
func newTest(t *testing.T, ns string, dims map[string]string) (*Recorder, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	r := New(&buf, ns, dims)
	r.now = func() time.Time { return fixedNow }
	return r, &buf
}

// emfDoc is an EMF document decoded strictly enough to check its shape.
type emfDoc struct {
	AWS struct {
		Timestamp         int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
	Root map[string]json.RawMessage `json:"-"`
}

// parseLines decodes every line of out as an EMF document and checks the
// invariants the specification requires of each: exactly one directive,
// every declared metric and dimension present in the root, at most 100
// metrics and 100 values per metric, no root member left unexplained.
func parseLines(t *testing.T, out string) []emfDoc {
	t.Helper()
	if out == "" {
		return nil
	}
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("output does not end in a newline: %q", out)
	}
	var docs []emfDoc
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var d emfDoc
		if err := json.Unmarshal(line, &d); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, line)
		}
		if err := json.Unmarshal(line, &d.Root); err != nil {
			t.Fatalf("line is not a JSON object: %v\n%s", err, line)
		}
		if len(d.AWS.CloudWatchMetrics) != 1 {
			t.Fatalf("want one metric directive, got %d: %s", len(d.AWS.CloudWatchMetrics), line)
		}
		dir := d.AWS.CloudWatchMetrics[0]
		explained := map[string]bool{"_aws": true}
		if n := len(dir.Metrics); n == 0 || n > MaxMetricsPerLine {
			t.Errorf("%d metrics in one document: %s", n, line)
		}
		for _, m := range dir.Metrics {
			raw, ok := d.Root[m.Name]
			if !ok {
				t.Errorf("metric %s declared but not in the root: %s", m.Name, line)
				continue
			}
			explained[m.Name] = true
			var vs []float64
			if json.Unmarshal(raw, &vs) == nil && len(vs) > MaxValuesPerMetric {
				t.Errorf("metric %s carries %d values: %s", m.Name, len(vs), line)
			}
			if m.Unit != string(UnitCount) && m.Unit != string(UnitMilliseconds) {
				t.Errorf("metric %s has unit %q", m.Name, m.Unit)
			}
		}
		for _, set := range dir.Dimensions {
			if len(set) > MaxDimensions {
				t.Errorf("dimension set of %d: %s", len(set), line)
			}
			for _, name := range set {
				var v string
				if err := json.Unmarshal(d.Root[name], &v); err != nil {
					t.Errorf("dimension %s is not a string member of the root: %s", name, line)
				}
				explained[name] = true
			}
		}
		for k := range d.Root {
			if !explained[k] {
				t.Errorf("root member %q is neither metric nor dimension: %s", k, line)
			}
		}
		docs = append(docs, d)
	}
	return docs
}

func (d emfDoc) number(t *testing.T, name string) float64 {
	t.Helper()
	var v float64
	if err := json.Unmarshal(d.Root[name], &v); err != nil {
		t.Fatalf("%s = %s, want a number", name, d.Root[name])
	}
	return v
}

func (d emfDoc) numbers(t *testing.T, name string) []float64 {
	t.Helper()
	var v []float64
	if err := json.Unmarshal(d.Root[name], &v); err != nil {
		t.Fatalf("%s = %s, want an array of numbers", name, d.Root[name])
	}
	return v
}

func (d emfDoc) str(t *testing.T, name string) string {
	t.Helper()
	var v string
	if err := json.Unmarshal(d.Root[name], &v); err != nil {
		t.Fatalf("%s = %s, want a string", name, d.Root[name])
	}
	return v
}

func (d emfDoc) units() map[string]string {
	out := map[string]string{}
	for _, m := range d.AWS.CloudWatchMetrics[0].Metrics {
		out[m.Name] = m.Unit
	}
	return out
}

func TestFlushShape(t *testing.T) {
	ctx := context.Background()
	r, buf := newTest(t, "tokken", map[string]string{"Function": "worker", "Stage": "prod"})
	r.Count(ctx, Requests, 1)
	r.Count(ctx, Requests, 2)
	r.Count(ctx, RevokeFailures, 0)
	r.Duration(ctx, AckLatency, 150*time.Millisecond)
	r.Duration(ctx, AckLatency, 2500*time.Microsecond)
	if err := r.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	docs := parseLines(t, buf.String())
	if len(docs) != 1 {
		t.Fatalf("want 1 line, got %d:\n%s", len(docs), buf)
	}
	d := docs[0]
	if d.AWS.Timestamp != fixedNow.UnixMilli() {
		t.Errorf("Timestamp = %d, want %d (ms since the epoch)", d.AWS.Timestamp, fixedNow.UnixMilli())
	}
	dir := d.AWS.CloudWatchMetrics[0]
	if dir.Namespace != "tokken" {
		t.Errorf("Namespace = %q", dir.Namespace)
	}
	if want := [][]string{{"Function", "Stage"}}; !reflect.DeepEqual(dir.Dimensions, want) {
		t.Errorf("Dimensions = %v, want %v", dir.Dimensions, want)
	}
	wantUnits := map[string]string{Requests: "Count", RevokeFailures: "Count", AckLatency: "Milliseconds"}
	if got := d.units(); !maps.Equal(got, wantUnits) {
		t.Errorf("Metrics = %v, want %v", got, wantUnits)
	}
	if got := d.number(t, Requests); got != 3 {
		t.Errorf("%s = %v, want 3 (aggregated)", Requests, got)
	}
	if got := d.number(t, RevokeFailures); got != 0 {
		t.Errorf("%s = %v, want an explicit 0", RevokeFailures, got)
	}
	if got := d.numbers(t, AckLatency); !slices.Equal(got, []float64{150, 2.5}) {
		t.Errorf("%s = %v, want [150 2.5] ms", AckLatency, got)
	}
	if d.str(t, "Function") != "worker" || d.str(t, "Stage") != "prod" {
		t.Errorf("dimension values wrong: %s", buf)
	}

	// Aggregates reset: a second flush with nothing recorded writes nothing.
	buf.Reset()
	if err := r.Flush(); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("empty flush wrote %q", buf)
	}
}

func TestFlushGroups(t *testing.T) {
	ctx := context.Background()
	type line struct {
		dims   [][]string
		values map[string]any // float64 or []float64
		extra  map[string]string
	}
	tests := []struct {
		name   string
		base   map[string]string
		record func(r *Recorder)
		want   []line // in output order: the no-extra group first, then by dimension values
	}{
		{
			name: "single duration is a number",
			base: map[string]string{"Function": "ingress"},
			record: func(r *Recorder) {
				r.Duration(ctx, AckLatency, 42*time.Millisecond)
			},
			want: []line{{dims: [][]string{{"Function"}}, values: map[string]any{AckLatency: 42.0}}},
		},
		{
			name: "no base dimensions gives an empty dimension set",
			base: nil,
			record: func(r *Recorder) {
				r.Count(ctx, AlertsIn, 5)
			},
			want: []line{{dims: [][]string{{}}, values: map[string]any{AlertsIn: 5.0}}},
		},
		{
			name: "extra dimensions make their own line and keep the base total",
			base: map[string]string{"Function": "worker"},
			record: func(r *Recorder) {
				r.Count(ctx, Approvals, 1)
				r.Count(ctx, GrantsIssued, 1, Dim("Profile", "prod-ssm"))
				r.Count(ctx, GrantsIssued, 2, Dim("Profile", "prod-ssm"))
				r.Count(ctx, GrantsIssued, 1, Dim("Profile", "dev-admin"))
			},
			want: []line{
				{dims: [][]string{{"Function"}}, values: map[string]any{Approvals: 1.0}},
				{dims: [][]string{{"Function", "Profile"}, {"Function"}}, values: map[string]any{GrantsIssued: 1.0}, extra: map[string]string{"Profile": "dev-admin"}},
				{dims: [][]string{{"Function", "Profile"}, {"Function"}}, values: map[string]any{GrantsIssued: 3.0}, extra: map[string]string{"Profile": "prod-ssm"}},
			},
		},
		{
			name: "extra dimension order does not matter",
			base: nil,
			record: func(r *Recorder) {
				r.Count(ctx, Revocations, 1, Dim("Reason", "expired"), Dim("Env", "prod"))
				r.Count(ctx, Revocations, 1, Dim("Env", "prod"), Dim("Reason", "expired"))
			},
			want: []line{{dims: [][]string{{"Env", "Reason"}, {}}, values: map[string]any{Revocations: 2.0}, extra: map[string]string{"Env": "prod", "Reason": "expired"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, buf := newTest(t, "tokken", tc.base)
			tc.record(r)
			if err := r.Flush(); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			docs := parseLines(t, buf.String())
			if len(docs) != len(tc.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(docs), len(tc.want), buf)
			}
			for i, w := range tc.want {
				d := docs[i]
				if got := d.AWS.CloudWatchMetrics[0].Dimensions; !reflect.DeepEqual(got, w.dims) {
					t.Errorf("line %d Dimensions = %v, want %v", i, got, w.dims)
				}
				for name, v := range w.values {
					switch v := v.(type) {
					case float64:
						if got := d.number(t, name); got != v {
							t.Errorf("line %d %s = %v, want %v", i, name, got, v)
						}
					case []float64:
						if got := d.numbers(t, name); !slices.Equal(got, v) {
							t.Errorf("line %d %s = %v, want %v", i, name, got, v)
						}
					}
				}
				if len(d.units()) != len(w.values) {
					t.Errorf("line %d declares %v, want only %v", i, d.units(), slices.Collect(maps.Keys(w.values)))
				}
				for k, v := range w.extra {
					if got := d.str(t, k); got != v {
						t.Errorf("line %d %s = %q, want %q", i, k, got, v)
					}
				}
				for k, v := range tc.base {
					if got := d.str(t, k); got != v {
						t.Errorf("line %d base %s = %q, want %q", i, k, got, v)
					}
				}
			}
		})
	}
}

func TestFlushSplitsAtSpecLimits(t *testing.T) {
	ctx := context.Background()
	r, buf := newTest(t, "tokken", map[string]string{"Function": "worker"})
	const nValues = 2*MaxValuesPerMetric + 1 // three documents' worth
	for i := range nValues {
		r.Duration(ctx, AckLatency, time.Duration(i)*time.Millisecond)
	}
	const nNames = MaxMetricsPerLine + 5
	for i := range nNames {
		r.Count(ctx, fmt.Sprintf("m%03d", i), i)
	}
	if err := r.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	docs := parseLines(t, buf.String()) // checks the per-line limits
	var latencies []float64
	counts := map[string]float64{}
	for _, d := range docs {
		for name, unit := range d.units() {
			if unit == string(UnitMilliseconds) {
				latencies = append(latencies, d.numbers(t, name)...)
				continue
			}
			if _, dup := counts[name]; dup {
				t.Errorf("count %s emitted twice (would double in CloudWatch)", name)
			}
			counts[name] = d.number(t, name)
		}
	}
	if len(latencies) != nValues {
		t.Errorf("got %d latency values across lines, want %d", len(latencies), nValues)
	}
	for i, v := range latencies {
		if v != float64(i) {
			t.Errorf("latency value %d = %v, want %v (order kept, none lost)", i, v, float64(i))
			break
		}
	}
	for i := range nNames {
		if got := counts[fmt.Sprintf("m%03d", i)]; got != float64(i) {
			t.Errorf("m%03d = %v, want %d", i, got, i)
		}
	}
}

func TestInvalidSamplesAreDroppedAndReported(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("x", 256)
	tooMany := make([]Dimension, MaxDimensions)
	for i := range tooMany {
		tooMany[i] = Dim(fmt.Sprintf("D%02d", i), "v")
	}
	tests := []struct {
		name   string
		record func(r *Recorder)
		reason string
	}{
		{"empty name", func(r *Recorder) { r.Count(ctx, "", 1) }, "1 to 255"},
		{"long name", func(r *Recorder) { r.Count(ctx, long, 1) }, "1 to 255"},
		{"control character in name", func(r *Recorder) { r.Count(ctx, "a\nb", 1) }, "control"},
		{"reserved name", func(r *Recorder) { r.Count(ctx, "_aws", 1) }, "reserved"},
		{"name is a base dimension", func(r *Recorder) { r.Count(ctx, "Function", 1) }, "also a dimension"},
		{"name is an extra dimension", func(r *Recorder) { r.Count(ctx, "Profile", 1, Dim("Profile", "p")) }, "also a dimension"},
		{"negative count", func(r *Recorder) { r.Count(ctx, Requests, -1) }, "negative count"},
		{"negative duration", func(r *Recorder) { r.Duration(ctx, AckLatency, -time.Second) }, "negative duration"},
		{"empty dimension value", func(r *Recorder) { r.Count(ctx, Requests, 1, Dim("Profile", "")) }, "1 to 1024"},
		{"blank dimension value", func(r *Recorder) { r.Count(ctx, Requests, 1, Dim("Profile", "  ")) }, "blank"},
		{"non-ASCII dimension value", func(r *Recorder) { r.Count(ctx, Requests, 1, Dim("Profile", "本番")) }, "ASCII"},
		{"dimension name with colon", func(r *Recorder) { r.Count(ctx, Requests, 1, Dim(":x", "v")) }, "':'"},
		{"duplicate dimension", func(r *Recorder) { r.Count(ctx, Requests, 1, Dim("A", "1"), Dim("A", "2")) }, "twice"},
		{"extra repeats base dimension", func(r *Recorder) { r.Count(ctx, Requests, 1, Dim("Function", "x")) }, "base dimension"},
		{"too many dimensions", func(r *Recorder) { r.Count(ctx, Requests, 1, tooMany...) }, "at most 30"},
		{"count and duration under one name", func(r *Recorder) {
			r.Count(ctx, AckLatency, 1)
			r.Duration(ctx, AckLatency, time.Second)
		}, "recorded as Count and Milliseconds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, buf := newTest(t, "tokken", map[string]string{"Function": "worker"})
			tc.record(r)
			r.Count(ctx, Requests, 7) // a valid sample next to the bad one survives
			err := r.Flush()
			if err == nil || !strings.Contains(err.Error(), "dropped 1 samples") || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("Flush error = %v, want one dropped sample mentioning %q", err, tc.reason)
			}
			docs := parseLines(t, buf.String())
			var total float64
			for _, d := range docs {
				if _, ok := d.Root[Requests]; ok {
					total += d.number(t, Requests)
				}
			}
			if total != 7 {
				t.Errorf("valid %s total = %v, want 7:\n%s", Requests, total, buf)
			}
			if err := r.Flush(); err != nil {
				t.Errorf("the drop is reported once, next Flush = %v", err)
			}
		})
	}
}

func TestPendingValuesAreBounded(t *testing.T) {
	ctx := context.Background()
	r, buf := newTest(t, "tokken", nil)
	for range MaxPendingValues + 3 {
		r.Duration(ctx, AckLatency, time.Millisecond)
	}
	err := r.Flush()
	if err == nil || !strings.Contains(err.Error(), "dropped 3 samples") {
		t.Fatalf("Flush error = %v, want 3 dropped", err)
	}
	var n int
	for _, d := range parseLines(t, buf.String()) {
		n += len(d.numbers(t, AckLatency))
	}
	if n != MaxPendingValues {
		t.Errorf("wrote %d values, want %d", n, MaxPendingValues)
	}
}

func TestNewConfigErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		ns        string
		dims      map[string]string
		wantErr   string
		wantLines int
		wantDims  []string
	}{
		{"valid", "tokken", map[string]string{"Function": "worker"}, "", 1, []string{"Function"}},
		{"empty namespace writes nothing", "", nil, "namespace", 0, nil},
		{"AWS namespace is reserved", "AWS/Lambda", nil, "reserved", 0, nil},
		{"namespace with bad characters", "tok*ken", nil, "only letters", 0, nil},
		{"empty base value is left out", "tokken", map[string]string{"Function": "", "Stage": "prod"}, "base dimension", 1, []string{"Stage"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, buf := newTest(t, tc.ns, tc.dims)
			if err := r.Err(); (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Err() = %v, want %q", err, tc.wantErr)
			}
			r.Count(ctx, Requests, 1)
			err := r.Flush()
			if (err == nil) != (tc.wantErr == "") {
				t.Errorf("Flush() = %v, want the configuration error %q again", err, tc.wantErr)
			}
			docs := parseLines(t, buf.String())
			if len(docs) != tc.wantLines {
				t.Fatalf("%d lines, want %d:\n%s", len(docs), tc.wantLines, buf)
			}
			if tc.wantLines > 0 {
				if got := docs[0].AWS.CloudWatchMetrics[0].Dimensions[0]; !slices.Equal(got, tc.wantDims) {
					t.Errorf("Dimensions = %v, want %v", got, tc.wantDims)
				}
			}
		})
	}
	if err := New(nil, "tokken", nil).Err(); err == nil {
		t.Error("New(nil writer) reports no error")
	}
}

func TestNilRecorderIsNoOp(t *testing.T) {
	ctx := context.Background()
	var r *Recorder
	r.Count(ctx, Requests, 1)
	r.Duration(ctx, AckLatency, time.Second)
	if err := r.Flush(); err != nil {
		t.Errorf("Flush = %v", err)
	}
	if err := r.Err(); err != nil {
		t.Errorf("Err = %v", err)
	}
	r.Run(ctx, time.Millisecond, nil) // returns at once
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFlushReportsWriteErrors(t *testing.T) {
	r := New(failingWriter{}, "tokken", nil)
	r.Count(context.Background(), Requests, 1)
	if err := r.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Flush = %v, want the write error", err)
	}
}

// lockedBuffer is a bytes.Buffer the test can read while Recorder writes.
type lockedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes chan struct{}
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n, err := b.buf.Write(p)
	b.mu.Unlock()
	select {
	case b.writes <- struct{}{}:
	default:
	}
	return n, err
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestConcurrentRecordingLosesNothing(t *testing.T) {
	ctx := context.Background()
	var out lockedBuffer
	r := New(&out, "tokken", map[string]string{"Function": "worker"})
	// At most MaxPendingValues durations in all, so that none is dropped
	// however rarely the flusher below gets to run on a loaded machine.
	const workers, perWorker = 8, MaxPendingValues / 8
	profiles := []string{"prod-ssm", "dev-admin", "billing-ro"}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	flushErrs := make(chan error, 1)
	go func() { // flush continuously while others record
		defer close(flushErrs)
		for {
			select {
			case <-stop:
				return
			default:
				if err := r.Flush(); err != nil {
					flushErrs <- err
					return
				}
			}
		}
	}()
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				r.Count(ctx, Requests, 1)
				r.Count(ctx, GrantsIssued, 2, Dim("Profile", profiles[(w+i)%len(profiles)]))
				r.Duration(ctx, AckLatency, time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-flushErrs; err != nil {
		t.Fatalf("concurrent Flush: %v", err)
	}
	if err := r.Flush(); err != nil {
		t.Fatalf("final Flush: %v", err)
	}

	var requests, grants, latencies float64
	perProfile := map[string]float64{}
	for _, d := range parseLines(t, out.String()) {
		if _, ok := d.Root[Requests]; ok {
			requests += d.number(t, Requests)
		}
		if _, ok := d.Root[GrantsIssued]; ok {
			g := d.number(t, GrantsIssued)
			grants += g
			perProfile[d.str(t, "Profile")] += g
		}
		if raw, ok := d.Root[AckLatency]; ok {
			var vs []float64
			if json.Unmarshal(raw, &vs) == nil {
				latencies += float64(len(vs))
			} else {
				latencies++
			}
		}
	}
	if want := float64(workers * perWorker); requests != want || latencies != want {
		t.Errorf("requests = %v, latencies = %v, want %v each", requests, latencies, want)
	}
	if want := float64(2 * workers * perWorker); grants != want {
		t.Errorf("grants = %v, want %v", grants, want)
	}
	if len(perProfile) != len(profiles) {
		t.Errorf("grants by profile = %v, want the %d profiles", perProfile, len(profiles))
	}
}

func TestRunFlushesPeriodicallyAndOnStop(t *testing.T) {
	out := &lockedBuffer{writes: make(chan struct{}, 1)}
	r := New(out, "tokken", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Run(ctx, time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()

	r.Count(ctx, AlertsIn, 1)
	select {
	case <-out.writes: // the ticker flushed without being asked
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not flush within 10 s")
	}

	r.Count(ctx, AlertsPosted, 4)
	cancel()
	<-done // Run returns only after its final flush

	var posted float64
	for _, d := range parseLines(t, out.String()) {
		if _, ok := d.Root[AlertsPosted]; ok {
			posted += d.number(t, AlertsPosted)
		}
	}
	if posted != 4 {
		t.Errorf("%s = %v after stop, want 4 (final flush)", AlertsPosted, posted)
	}
}

func TestKnownNames(t *testing.T) {
	seen := map[string]bool{}
	r := New(io.Discard, "tokken", map[string]string{"Function": "worker"})
	for _, d := range Known() {
		if seen[d.Name] {
			t.Errorf("%s listed twice", d.Name)
		}
		seen[d.Name] = true
		if err := r.checkMetricName(d.Name, nil); err != nil {
			t.Errorf("%s: %v", d.Name, err)
		}
		if d.Unit != UnitCount && d.Unit != UnitMilliseconds || d.Help == "" {
			t.Errorf("%+v: unit or help missing", d)
		}
	}
	for _, name := range []string{Requests, Approvals, GrantsIssued, Revocations, RevokeFailures, AlertsIn, AlertsPosted, SlackRateLimitWaits, AckLatency} {
		if !seen[name] {
			t.Errorf("constant %s missing from Known()", name)
		}
	}
}

type recordingAuditor struct {
	events []bot.AuditEvent
	err    error
}

func (a *recordingAuditor) Record(_ context.Context, e bot.AuditEvent) error {
	a.events = append(a.events, e)
	return a.err
}

func TestAuditorCountsTransitions(t *testing.T) {
	ctx := context.Background()
	r, buf := newTest(t, "tokken", nil)
	next := &recordingAuditor{}
	a := Auditor(next, r)
	actions := []string{
		access.ActRequested, access.ActApproved, access.ActApproved, access.ActActivating, access.ActActive,
		access.ActEnding, access.ActRevoked, access.ActRequested, access.ActActive, access.ActExpired,
		access.ActRevokeFailed, access.ActDenied, "domain.requested",
	}
	for _, act := range actions {
		if err := a.Record(ctx, bot.AuditEvent{Action: act, Subject: "r-1"}); err != nil {
			t.Fatalf("Record(%s): %v", act, err)
		}
	}
	if len(next.events) != len(actions) {
		t.Errorf("wrapped auditor got %d events, want all %d", len(next.events), len(actions))
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	docs := parseLines(t, buf.String())
	if len(docs) != 1 {
		t.Fatalf("want 1 line, got %d", len(docs))
	}
	want := map[string]float64{Requests: 2, Approvals: 2, GrantsIssued: 2, Revocations: 2, RevokeFailures: 1}
	got := map[string]float64{}
	for name := range docs[0].units() {
		got[name] = docs[0].number(t, name)
	}
	if !maps.Equal(got, want) {
		t.Errorf("counts = %v, want %v", got, want)
	}

	// The wrapped auditor's error is passed on; the count is still taken.
	next.err = errors.New("store down")
	if err := a.Record(ctx, bot.AuditEvent{Action: access.ActRequested}); err == nil || !strings.Contains(err.Error(), "store down") {
		t.Errorf("Record = %v, want the wrapped error", err)
	}
	if err := Auditor(nil, r).Record(ctx, bot.AuditEvent{Action: access.ActRequested}); err == nil {
		t.Error("Auditor(nil) Record succeeded: the event would be lost silently")
	}
	buf.Reset()
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := parseLines(t, buf.String())[0].number(t, Requests); got != 2 {
		t.Errorf("requests after failing audits = %v, want 2", got)
	}
}

func TestSlackRateLimited(t *testing.T) {
	r, buf := newTest(t, "tokken", nil)
	var onRateLimited func(method string, wait time.Duration) = r.SlackRateLimited // slackapi.Options.OnRateLimited
	onRateLimited("chat.postMessage", time.Second)
	onRateLimited("chat.update", 2*time.Second)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := parseLines(t, buf.String())[0].number(t, SlackRateLimitWaits); got != 2 {
		t.Errorf("%s = %v, want 2", SlackRateLimitWaits, got)
	}
	var nilRec *Recorder
	nilRec.SlackRateLimited("chat.postMessage", time.Second) // no panic
}
