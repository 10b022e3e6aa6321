// Package metrics records tokken's operational metrics and writes them as
// CloudWatch Embedded Metric Format (EMF) log lines. On Lambda, a JSON line
// written to stdout that carries an "_aws" member becomes a CloudWatch metric
// with no API call, no extra IAM permission and no agent; locally the same
// lines are readable logs.
//
// A Recorder aggregates between flushes: counts are summed, durations are
// kept as values (CloudWatch computes the statistics and percentiles).
// Flush writes what was recorded since the last flush; wiring calls it at the
// end of every Lambda invocation (before the runtime freezes the process) and
// runs Recorder.Run in long-lived processes.
//
// Dimensions turn into separate CloudWatch metrics, each one billed, so
// their values must come from a small set (function, command, outcome,
// profile), never user ids, request ids or free text.
//
// Wiring: metrics.Auditor counts the access lifecycle (requests, approvals,
// grants, revocations, revoke failures) from the audit trail;
// Recorder.SlackRateLimited plugs into slackapi.Options.OnRateLimited;
// AckLatency, AlertsIn and AlertsPosted are recorded where those happen.
//
// The EMF document shape follows
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html:
// at most 100 metrics per document, 100 values per metric and 30 dimensions
// per dimension set; Recorder splits lines to stay within them.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Unit is a CloudWatch metric unit.
type Unit string

// Units tokken records.
const (
	UnitCount        Unit = "Count"
	UnitMilliseconds Unit = "Milliseconds"
)

// Limits from the EMF specification and CloudWatch's PutMetricData rules.
const (
	// MaxMetricsPerLine is the most metric definitions one EMF document may
	// declare.
	MaxMetricsPerLine = 100
	// MaxValuesPerMetric is the most values one metric may carry in one
	// EMF document.
	MaxValuesPerMetric = 100
	// MaxDimensions is the most dimensions in one dimension set.
	MaxDimensions = 30
	// MaxPendingValues bounds the durations kept per metric and dimension
	// set between two flushes, so a process that never flushes cannot grow
	// without bound; values past it are dropped and reported by Flush.
	MaxPendingValues = 10_000
	// DefaultFlushInterval is Run's interval when given none.
	DefaultFlushInterval = time.Minute
)

// Dimension is one CloudWatch dimension: a name and a low-cardinality value.
type Dimension struct {
	Name  string
	Value string
}

// Dim returns the dimension name=value, for call sites such as
// rec.Count(ctx, metrics.Requests, 1, metrics.Dim("Outcome", "denied")).
func Dim(name, value string) Dimension { return Dimension{Name: name, Value: value} }

// Recorder aggregates metrics and writes them as EMF lines to its writer.
// It is safe for concurrent use. A nil *Recorder records nothing and writes
// nothing, so code can take one unconditionally and wiring can leave it out.
type Recorder struct {
	w         io.Writer
	namespace string
	base      []Dimension // valid base dimensions, sorted by name
	baseNames []string
	err       error // configuration problem found by New
	now       func() time.Time

	writeMu sync.Mutex // one Write per line, lines never interleave

	mu      sync.Mutex
	groups  map[string]*group // by canonical extra-dimension key
	dropped int
	dropErr error // first reason a sample was dropped since the last flush
}

// group is what was recorded under one set of extra dimensions.
type group struct {
	extra   []Dimension // sorted by name
	metrics map[string]*series
}

// series is one metric's pending values: a single running sum for counts,
// the recorded values for durations.
type series struct {
	unit   Unit
	sum    int64
	values []float64
}

// New returns a Recorder writing EMF lines to w (os.Stdout on Lambda) under
// the CloudWatch namespace (e.g. "tokken"), with dims added to every metric
// (e.g. {"Function": "worker"}). A namespace CloudWatch would reject makes
// the Recorder write nothing; an invalid dimension is left out. Both are
// reported by Err and by every Flush, so a misconfiguration is loud rather
// than a silently empty dashboard.
func New(w io.Writer, namespace string, dims map[string]string) *Recorder {
	r := &Recorder{w: w, namespace: namespace, now: time.Now, groups: map[string]*group{}}
	var errs []error
	if w == nil {
		errs = append(errs, errors.New("metrics: nil writer"))
	}
	if err := checkNamespace(namespace); err != nil {
		errs = append(errs, err)
	}
	for name, value := range dims {
		d := Dimension{Name: name, Value: value}
		if err := checkDimension(d); err != nil {
			errs = append(errs, fmt.Errorf("metrics: base %w", err))
			continue
		}
		r.base = append(r.base, d)
	}
	slices.SortFunc(r.base, func(a, b Dimension) int { return strings.Compare(a.Name, b.Name) })
	if len(r.base) > MaxDimensions {
		errs = append(errs, fmt.Errorf("metrics: %d base dimensions, at most %d", len(r.base), MaxDimensions))
		r.base = r.base[:MaxDimensions]
	}
	r.baseNames = make([]string, len(r.base))
	for i, d := range r.base {
		r.baseNames[i] = d.Name
	}
	r.err = errors.Join(errs...)
	return r
}

// Err reports the configuration problems New found (nil if none), so wiring
// can refuse to start on them.
func (r *Recorder) Err() error {
	if r == nil {
		return nil
	}
	return r.err
}

// Count adds n (≥ 0) to the count metric name, under the Recorder's
// dimensions plus extra. Recording 0 is allowed and publishes a zero, which
// keeps alarms on the metric out of INSUFFICIENT_DATA. ctx is accepted
// so every recording call site reads like the rest of tokken; recording
// never blocks on I/O and does not consult it. Invalid input (empty or
// reserved name, negative n, bad dimension) is dropped and reported by the
// next Flush.
func (r *Recorder) Count(ctx context.Context, name string, n int, extra ...Dimension) {
	if r == nil {
		return
	}
	if n < 0 {
		r.drop(fmt.Errorf("metrics: %s: negative count %d", name, n))
		return
	}
	r.record(name, UnitCount, int64(n), 0, extra)
}

// Duration records d as one value of the milliseconds metric name (for
// example AckLatency), under the Recorder's dimensions plus extra.
// Invalid input, including a negative duration, is dropped and reported by
// the next Flush; see Count for ctx.
func (r *Recorder) Duration(ctx context.Context, name string, d time.Duration, extra ...Dimension) {
	if r == nil {
		return
	}
	if d < 0 {
		r.drop(fmt.Errorf("metrics: %s: negative duration %s", name, d))
		return
	}
	r.record(name, UnitMilliseconds, 0, float64(d)/float64(time.Millisecond), extra)
}

func (r *Recorder) record(name string, unit Unit, n int64, ms float64, extra []Dimension) {
	key, dims, err := r.extraKey(extra)
	if err == nil {
		err = r.checkMetricName(name, dims)
	}
	if err != nil {
		r.drop(fmt.Errorf("metrics: %s: %w", name, err))
		return
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[key]
	if g == nil {
		g = &group{extra: dims, metrics: map[string]*series{}}
		r.groups[key] = g
	}
	s := g.metrics[name]
	switch {
	case s == nil:
		s = &series{unit: unit}
		g.metrics[name] = s
	case s.unit != unit:
		r.dropLocked(fmt.Errorf("metrics: %s: recorded as %s and %s since the last flush", name, s.unit, unit))
		return
	}
	if unit == UnitCount {
		s.sum += n
		return
	}
	if len(s.values) >= MaxPendingValues {
		r.dropLocked(fmt.Errorf("metrics: %s: more than %d values between flushes", name, MaxPendingValues))
		return
	}
	s.values = append(s.values, ms)
}

// extraKey validates extra and returns its canonical key and a sorted copy.
// The common case, no extra dimensions, allocates nothing.
func (r *Recorder) extraKey(extra []Dimension) (string, []Dimension, error) {
	if len(extra) == 0 {
		return "", nil, nil
	}
	if len(r.base)+len(extra) > MaxDimensions {
		return "", nil, fmt.Errorf("%d dimensions, at most %d", len(r.base)+len(extra), MaxDimensions)
	}
	dims := slices.Clone(extra)
	slices.SortFunc(dims, func(a, b Dimension) int { return strings.Compare(a.Name, b.Name) })
	var b strings.Builder
	for i, d := range dims {
		if err := checkDimension(d); err != nil {
			return "", nil, err
		}
		if i > 0 && dims[i-1].Name == d.Name {
			return "", nil, fmt.Errorf("dimension %q given twice", d.Name)
		}
		if r.isBaseDim(d.Name) {
			return "", nil, fmt.Errorf("dimension %q is already a base dimension", d.Name)
		}
		b.WriteString(d.Name)
		b.WriteByte(0)
		b.WriteString(d.Value)
		b.WriteByte(0)
	}
	return b.String(), dims, nil
}

func (r *Recorder) isBaseDim(name string) bool {
	for _, d := range r.base {
		if d.Name == name {
			return true
		}
	}
	return false
}

// checkMetricName rejects names CloudWatch refuses and names that would
// collide with a dimension or the "_aws" member in the EMF root object.
func (r *Recorder) checkMetricName(name string, extra []Dimension) error {
	switch {
	case name == "" || utf8.RuneCountInString(name) > 255:
		return errors.New("metric name must be 1 to 255 characters")
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		return errors.New("metric name must be valid UTF-8 without control characters")
	case name == "_aws":
		return errors.New(`metric name "_aws" is reserved`)
	case r.isBaseDim(name):
		return errors.New("metric name is also a dimension name")
	}
	for _, d := range extra {
		if d.Name == name {
			return errors.New("metric name is also a dimension name")
		}
	}
	return nil
}

func (r *Recorder) drop(err error) {
	r.mu.Lock()
	r.dropLocked(err)
	r.mu.Unlock()
}

func (r *Recorder) dropLocked(err error) {
	r.dropped++
	if r.dropErr == nil {
		r.dropErr = err
	}
}

// Flush writes everything recorded since the previous flush as EMF lines
// (one per set of extra dimensions, more only past the EMF limits; none if
// nothing was recorded) and resets the aggregates. Each line is one Write
// call ending in a newline, so it arrives as one CloudWatch Logs event. The
// error reports configuration problems, samples dropped since the last
// flush, and write failures; what could not be written is not retried
// (metrics are best effort, and holding them would grow without bound).
func (r *Recorder) Flush() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	groups, dropped, dropErr := r.groups, r.dropped, r.dropErr
	r.groups, r.dropped, r.dropErr = map[string]*group{}, 0, nil
	r.mu.Unlock()

	var errs []error
	if r.err != nil {
		errs = append(errs, r.err)
	}
	if dropped > 0 {
		errs = append(errs, fmt.Errorf("metrics: dropped %d samples since the last flush, first: %w", dropped, dropErr))
	}
	if r.w == nil || checkNamespace(r.namespace) != nil || len(groups) == 0 {
		return errors.Join(errs...)
	}

	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	ts := r.now().UnixMilli()
	var buf []byte
	for _, k := range keys {
		for _, doc := range r.documents(ts, groups[k]) {
			var err error
			buf, err = appendJSONLine(buf[:0], doc)
			if err != nil {
				errs = append(errs, fmt.Errorf("metrics: encode: %w", err))
				continue
			}
			r.writeMu.Lock()
			_, err = r.w.Write(buf)
			r.writeMu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("metrics: write: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// Run flushes every interval (DefaultFlushInterval if ≤ 0) until ctx is
// done, then flushes once more and returns. Flush errors are logged to log
// (slog.Default() if nil). It is for long-lived processes (`tokken serve`);
// on Lambda, flush at the end of each invocation instead. A nil Recorder
// returns at once.
func (r *Recorder) Run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if r == nil {
		return
	}
	if interval <= 0 {
		interval = DefaultFlushInterval
	}
	if log == nil {
		log = slog.Default()
	}
	flush := func() {
		if err := r.Flush(); err != nil {
			log.ErrorContext(ctx, "metrics flush", "err", err)
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			flush()
			return
		case <-t.C:
			flush()
		}
	}
}

// SlackRateLimited counts one SlackRateLimitWaits. Its signature matches
// slackapi.Options.OnRateLimited, so wiring can pass rec.SlackRateLimited
// directly; the method and wait are in slackapi's own log line.
func (r *Recorder) SlackRateLimited(method string, wait time.Duration) {
	r.Count(context.Background(), SlackRateLimitWaits, 1)
}

// Limits on names CloudWatch accepts.
const (
	maxNameLen  = 255
	maxValueLen = 1024
)

func checkNamespace(ns string) error {
	switch {
	case ns == "" || len(ns) > maxNameLen:
		return fmt.Errorf("metrics: namespace %q must be 1 to %d characters", ns, maxNameLen)
	case strings.HasPrefix(ns, "AWS/"):
		return fmt.Errorf("metrics: namespace %q: the AWS/ prefix is reserved", ns)
	}
	for _, c := range ns {
		ok := c < utf8.RuneSelf && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.ContainsRune("._-/#: ", c))
		if !ok {
			return fmt.Errorf("metrics: namespace %q: only letters, digits and . _ - / # : space are allowed", ns)
		}
	}
	return nil
}

// checkDimension applies CloudWatch's dimension rules: ASCII, no control
// characters, at least one non-space character, names up to 255 not
// starting with ':', values up to 1024.
func checkDimension(d Dimension) error {
	if err := checkASCII(d.Name, maxNameLen); err != nil {
		return fmt.Errorf("dimension name %q: %w", d.Name, err)
	}
	if strings.HasPrefix(d.Name, ":") {
		return fmt.Errorf("dimension name %q: must not start with ':'", d.Name)
	}
	if d.Name == "_aws" {
		return errors.New(`dimension name "_aws" is reserved`)
	}
	if err := checkASCII(d.Value, maxValueLen); err != nil {
		return fmt.Errorf("dimension %s value %q: %w", d.Name, d.Value, err)
	}
	return nil
}

func checkASCII(s string, max int) error {
	if len(s) == 0 || len(s) > max {
		return fmt.Errorf("must be 1 to %d characters", max)
	}
	blank := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f {
			return errors.New("must be printable ASCII")
		}
		if c != ' ' {
			blank = false
		}
	}
	if blank {
		return errors.New("must not be blank")
	}
	return nil
}
