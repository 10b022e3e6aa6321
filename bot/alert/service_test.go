package alert

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/boltstore"
	"github.com/tokken/tokken/testkit/botfake"
	"github.com/tokken/tokken/testkit/fakeclock"
)

// The harness runs the Service on the real bbolt store and JobMux; the
// queue records jobs so each test decides when they run, and the notifier
// records what Slack would show.

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// shownMsg is one message as the recording notifier keeps it.
type shownMsg struct {
	channel, ts string
	rec         *Record
	notice      *Notice
	storm       *Storm
	edits       int
	thread      [][]Line
}

type recNotifier struct {
	mu   sync.Mutex
	seq  int
	msgs map[string]*shownMsg // ts -> message
	top  []string             // ts of top-level posts, in order
	fail error                // returned by the next call, then cleared
}

func newNotifier() *recNotifier { return &recNotifier{msgs: map[string]*shownMsg{}} }

func (n *recNotifier) failing() error {
	err := n.fail
	n.fail = nil
	return err
}

func (n *recNotifier) post(channel string, m *shownMsg) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.failing(); err != nil {
		return "", err
	}
	n.seq++
	m.channel, m.ts = channel, fmt.Sprintf("%d.000100", 1000+n.seq)
	n.msgs[m.ts] = m
	n.top = append(n.top, m.ts)
	return m.ts, nil
}

func (n *recNotifier) PostAlert(_ context.Context, channel string, r Record) (string, error) {
	return n.post(channel, &shownMsg{rec: &r})
}

func (n *recNotifier) PostNotice(_ context.Context, channel string, nt Notice) (string, error) {
	return n.post(channel, &shownMsg{notice: &nt})
}

func (n *recNotifier) PostStorm(_ context.Context, channel string, st Storm) (string, error) {
	return n.post(channel, &shownMsg{storm: &st})
}

// change applies fn to the message ts, as chat.update (edit) or a thread
// reply (not an edit) does, failing like Slack when there is no such
// message.
func (n *recNotifier) change(ts string, edit bool, fn func(*shownMsg)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.failing(); err != nil {
		return err
	}
	m, ok := n.msgs[ts]
	if !ok {
		return fmt.Errorf("message_not_found %s", ts)
	}
	if edit {
		m.edits++
	}
	fn(m)
	return nil
}

func (n *recNotifier) UpdateAlert(_ context.Context, _, ts string, r Record) error {
	return n.change(ts, true, func(m *shownMsg) { m.rec = &r })
}

func (n *recNotifier) UpdateStorm(_ context.Context, _, ts string, st Storm) error {
	return n.change(ts, true, func(m *shownMsg) { m.storm = &st })
}

func (n *recNotifier) PostThread(_ context.Context, _, ts string, lines []Line) error {
	return n.change(ts, false, func(m *shownMsg) { m.thread = append(m.thread, slices.Clone(lines)) })
}

func (n *recNotifier) topLevel() []*shownMsg {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*shownMsg, 0, len(n.top))
	for _, ts := range n.top {
		out = append(out, n.msgs[ts])
	}
	return out
}

// threadLines flattens a message's thread.
func (m *shownMsg) threadLines() []Line {
	var out []Line
	for _, b := range m.thread {
		out = append(out, b...)
	}
	return out
}

type harness struct {
	t     *testing.T
	svc   *Service
	store bot.Store
	q     *botfake.Queue
	n     *recNotifier
	clock *fakeclock.Clock
	mux   *bot.JobMux
}

func newHarness(t *testing.T, tweak ...func(*Options)) *harness {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, store: st, q: &botfake.Queue{}, n: newNotifier(), clock: fakeclock.New(t0), mux: bot.NewJobMux()}
	o := Options{
		Store: st, Queue: h.q, Notifier: h.n, Now: h.clock.Now,
		Routes:         testRoutes(),
		DefaultChannel: "CALL", OpsChannel: "COPS",
		StormThreshold: 3,
	}
	for _, f := range tweak {
		f(&o)
	}
	h.svc, err = NewService(o)
	if err != nil {
		t.Fatal(err)
	}
	h.svc.Register(h.mux)
	return h
}

// ingest stores ev and runs every job it causes.
func (h *harness) ingest(ev Event) {
	h.t.Helper()
	if _, err := h.svc.Ingest(context.Background(), "test", "", ev); err != nil {
		h.t.Fatal(err)
	}
	h.drain()
}

// drain runs the queued jobs, and the jobs they enqueue, until none is
// left; a failing job fails the test.
func (h *harness) drain() {
	h.t.Helper()
	if err := h.q.Drain(context.Background(), h.mux.HandleJob); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) record(key string) Record {
	h.t.Helper()
	r, err := h.svc.Get(context.Background(), key)
	if err != nil {
		h.t.Fatalf("record %s: %v", key, err)
	}
	return r
}

func f64(v float64) *float64 { return &v }

// mk builds a Mackerel-like host alert.
func mk(id string, status Status, open bool, host string, at time.Time) Event {
	a := Alert{
		Source: SourceMackerel, Key: "mackerel:" + id, ID: id, Kind: KindAlert, Org: "acme",
		Status: status, Open: open, Monitor: "CPU %", MonitorType: "host",
		Host:     &Host{ID: "h-" + host, Name: host, Roles: []Role{{Service: "shop", Role: "web"}}},
		Metric:   Metric{Label: "cpu", Value: f64(95), Operator: ">", Critical: f64(90)},
		OpenedAt: at, StatusChangedAt: at,
	}
	if !open {
		a.ClosedAt, a.OpenedAt = at, time.Time{}
		a.Metric.Value = nil
	}
	return Event{Kind: KindAlert, Alert: &a}
}

func TestLifecycleUpdateInPlaceOnClose(t *testing.T) {
	h := newHarness(t)
	h.ingest(mk("a1", StatusCritical, true, "app01", t0))
	top := h.n.topLevel()
	if len(top) != 1 || top[0].channel != "CCRIT" || top[0].rec.Decision.Mention != "here" {
		t.Fatalf("first delivery: %+v", top)
	}
	h.clock.Advance(12 * time.Minute)
	h.ingest(mk("a1", StatusOK, false, "app01", t0.Add(12*time.Minute)))
	top = h.n.topLevel()
	if len(top) != 1 {
		t.Fatalf("close posted a new message: %d top-level", len(top))
	}
	m := top[0]
	if m.edits != 1 || m.rec.Alert.Open || !m.rec.Alert.OpenedAt.Equal(t0) || m.rec.Alert.Duration() != 12*time.Minute {
		t.Errorf("close not shown in place with the stored OpenedAt: edits=%d alert=%+v", m.edits, m.rec.Alert)
	}
	lines := m.threadLines()
	if len(lines) != 1 || lines[0].Kind != LineResolved {
		t.Errorf("thread after close: %+v", lines)
	}
	r := h.record("mackerel:a1")
	if r.Shown != r.Rev || len(r.Pending) != 0 || r.LeaseOwner != "" {
		t.Errorf("record not settled: %+v", r)
	}
}

func TestLifecycleResendDedup(t *testing.T) {
	h := newHarness(t)
	h.ingest(mk("a1", StatusCritical, true, "app01", t0))
	h.clock.Advance(time.Minute)
	h.ingest(mk("a1", StatusCritical, true, "app01", t0)) // identical, within the interval
	m := h.n.topLevel()[0]
	if len(m.thread) != 0 || m.edits != 0 {
		t.Fatalf("identical re-send within the interval was shown: %+v", m)
	}
	h.clock.Advance(DefaultNotifyInterval)
	h.ingest(mk("a1", StatusCritical, true, "app01", t0)) // identical, after the interval
	changed := mk("a1", StatusCritical, true, "app01", t0)
	changed.Alert.Metric.Value = f64(99)
	h.clock.Advance(time.Minute)
	h.ingest(changed) // a new value: worth a thread line at once
	if len(h.n.topLevel()) != 1 {
		t.Fatal("a re-send posted a new top-level message")
	}
	lines := m.threadLines()
	if len(lines) != 2 || lines[0].Kind != LineResend || lines[1].Kind != LineResend || *lines[1].Alert.Metric.Value != 99 {
		t.Errorf("re-send lines: %+v", lines)
	}
	if m.edits != 0 {
		t.Errorf("re-sends edited the top message %d times", m.edits)
	}
	// The same delivery processed twice (a retried job) changes nothing.
	id, err := h.svc.Ingest(context.Background(), "test", "fixed-id", mk("a1", StatusWarning, true, "app01", t0.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	jobs := h.q.Take()
	for range 2 {
		for _, j := range jobs {
			if err := h.mux.HandleJob(context.Background(), j); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.drain()
	if got := len(m.threadLines()); got != 3 || h.record("mackerel:a1").Deliveries != 5 {
		t.Errorf("retried delivery %s applied twice: %d lines, %d deliveries", id, got, h.record("mackerel:a1").Deliveries)
	}
}

func TestLifecycleStatusChangeAndStaleDelivery(t *testing.T) {
	h := newHarness(t)
	h.ingest(mk("a1", StatusWarning, true, "app01", t0))
	h.clock.Advance(time.Minute)
	h.ingest(mk("a1", StatusCritical, true, "app01", t0.Add(time.Minute)))
	m := h.n.topLevel()[0]
	if m.edits != 1 || m.rec.Alert.Status != StatusCritical || !m.rec.Alert.OpenedAt.Equal(t0) {
		t.Fatalf("status change: edits=%d %+v", m.edits, m.rec.Alert)
	}
	// A delivery older than the current state arrives late: ignored.
	h.ingest(mk("a1", StatusWarning, true, "app01", t0.Add(30*time.Second)))
	if m.edits != 1 || h.record("mackerel:a1").Alert.Status != StatusCritical {
		t.Errorf("stale delivery regressed the alert")
	}
}

func TestLifecycleRouting(t *testing.T) {
	h := newHarness(t)
	stg := mk("s1", StatusCritical, true, "web01", t0)
	stg.Alert.Host.Roles = []Role{{Service: "shop-stg", Role: "web"}}
	h.ingest(stg)
	dropped := mk("d1", StatusCritical, true, "app02", t0)
	dropped.Alert.Monitor = "load test"
	h.ingest(dropped)
	top := h.n.topLevel()
	if len(top) != 1 || top[0].channel != "CSTG" || top[0].rec.Decision.Mention != "" {
		t.Fatalf("staging: %+v", top)
	}
	r := h.record("mackerel:d1")
	if r.Placed || !strings.Contains(r.Suppressed(h.clock.Now()), "dropped") {
		t.Errorf("dropped alert: %+v", r)
	}
	// tokken's own alerts go to the ops channel; their all-clear for an
	// alert never shown posts nothing.
	ctx := context.Background()
	if err := Report(ctx, h.q, Operational("dlq", "jobs", StatusOK, "empty", t0)); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if err := Report(ctx, h.q, Operational("revoke_failed", "r-1", StatusWarning, "revoke failed", t0)); err != nil {
		t.Fatal(err)
	}
	h.drain()
	top = h.n.topLevel()
	if len(top) != 2 || top[1].channel != "COPS" || top[1].rec.Alert.Key != "tokken:revoke_failed:r-1" {
		t.Errorf("operational alert: %d messages, last %+v", len(top), top[len(top)-1])
	}
}

func TestLifecycleFlapping(t *testing.T) {
	h := newHarness(t)
	at := t0
	for i := range 4 {
		id := fmt.Sprintf("f%d", i)
		h.ingest(mk(id, StatusCritical, true, "app01", at))
		at = at.Add(2 * time.Minute)
		h.clock.Advance(2 * time.Minute)
		h.ingest(mk(id, StatusOK, false, "app01", at))
		at = at.Add(time.Minute)
		h.clock.Advance(time.Minute)
	}
	top := h.n.topLevel()
	if len(top) != 1 {
		t.Fatalf("flapping alert posted %d top-level messages", len(top))
	}
	m := top[0]
	if m.rec.Flaps != 3 || m.rec.Alert.Key != "mackerel:f3" || m.rec.Alert.Open {
		t.Errorf("flap counter/owner: flaps=%d key=%s open=%v", m.rec.Flaps, m.rec.Alert.Key, m.rec.Alert.Open)
	}
	reopened := 0
	for _, l := range m.threadLines() {
		if l.Kind == LineReopened {
			reopened++
		}
	}
	if reopened != 3 {
		t.Errorf("reopened lines = %d, want 3", reopened)
	}
	// After the flap window, the same monitor gets a fresh message.
	h.clock.Advance(DefaultFlapWindow + time.Minute)
	h.ingest(mk("f9", StatusCritical, true, "app01", h.clock.Now()))
	if len(h.n.topLevel()) != 2 {
		t.Errorf("alert after the flap window reused the old message")
	}
}

func TestLifecycleSameKeyReopens(t *testing.T) {
	h := newHarness(t)
	cw := func(open bool, at time.Time) Event {
		a := Alert{Source: SourceCloudWatch, Key: "cloudwatch:arn:alarm:x", ID: "arn:alarm:x", Kind: KindAlert,
			Status: StatusCritical, Open: open, Monitor: "HighCPU", Host: &Host{ID: "i-0abcdef1234567890"}, StatusChangedAt: at}
		if open {
			a.OpenedAt = at
		} else {
			a.Status, a.ClosedAt = StatusOK, at
		}
		return Event{Kind: KindAlert, Alert: &a}
	}
	h.ingest(cw(true, t0))
	h.clock.Advance(time.Minute)
	h.ingest(cw(false, t0.Add(time.Minute)))
	h.clock.Advance(time.Minute)
	h.ingest(cw(true, t0.Add(2*time.Minute)))
	if top := h.n.topLevel(); len(top) != 1 || top[0].rec.Flaps != 1 || !top[0].rec.Alert.Open {
		t.Fatalf("reopen within the window: %d messages %+v", len(top), top[0].rec)
	}
	h.clock.Advance(time.Minute)
	h.ingest(cw(false, t0.Add(3*time.Minute)))
	h.clock.Advance(time.Hour)
	h.ingest(cw(true, t0.Add(time.Hour)))
	if top := h.n.topLevel(); len(top) != 2 || top[1].rec.Flaps != 0 {
		t.Errorf("reopen after the window: %d messages", len(top))
	}
}

func TestLifecycleStorm(t *testing.T) {
	h := newHarness(t) // threshold 3 per minute
	for i := range 40 {
		h.ingest(mk(fmt.Sprintf("s%02d", i), StatusCritical, true, fmt.Sprintf("app%02d", i), t0))
	}
	top := h.n.topLevel()
	if len(top) != 4 || top[3].storm == nil {
		t.Fatalf("storm: %d top-level messages, want 3 alerts and 1 summary", len(top))
	}
	sum := top[3]
	if sum.storm.New != 37 || sum.storm.ByStatus[StatusCritical] != 37 {
		t.Errorf("summary counts: %+v", sum.storm)
	}
	if got := len(sum.threadLines()); got != 37 {
		t.Errorf("storm thread has %d lines, want 37", got)
	}
	// Closing a member updates the summary and adds a thread line.
	h.clock.Advance(time.Minute)
	h.ingest(mk("s10", StatusOK, false, "app10", t0.Add(time.Minute)))
	if sum.storm.Resolved != 1 || len(sum.threadLines()) != 38 {
		t.Errorf("after a member closed: resolved=%d lines=%d", sum.storm.Resolved, len(sum.threadLines()))
	}
	// Every alert is stored.
	for i := range 40 {
		h.record(fmt.Sprintf("mackerel:s%02d", i))
	}
	// Quiet for longer than StormQuiet: the next alert has its own message.
	h.clock.Advance(DefaultStormQuiet + time.Minute)
	h.ingest(mk("after", StatusCritical, true, "db01", h.clock.Now()))
	if top := h.n.topLevel(); len(top) != 5 || top[4].rec == nil {
		t.Errorf("after the storm: %d messages", len(top))
	}
}

func TestLifecycleFailedPostIsRetried(t *testing.T) {
	h := newHarness(t)
	h.n.fail = errors.New("slack down")
	if _, err := h.svc.Ingest(context.Background(), "test", "", mk("a1", StatusCritical, true, "app01", t0)); err != nil {
		t.Fatal(err)
	}
	jobs := h.q.Take()
	if err := h.mux.HandleJob(context.Background(), jobs[0]); err == nil {
		t.Fatal("a failed post did not fail the job")
	}
	if r := h.record("mackerel:a1"); r.Placed || r.LeaseOwner != "" {
		t.Fatalf("after a failed post: %+v", r)
	}
	if err := h.mux.HandleJob(context.Background(), jobs[0]); err != nil { // the queue's retry
		t.Fatal(err)
	}
	if len(h.n.topLevel()) != 1 {
		t.Errorf("retry did not post")
	}
}

func TestLifecycleConcurrentDeliveries(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.StormThreshold = 1000 })
	ctx := context.Background()
	for i := range 20 {
		ev := mk("c1", StatusCritical, true, "app01", t0)
		ev.Alert.Metric.Value = f64(float64(100 + i))
		if _, err := h.svc.Ingest(ctx, "test", "", ev); err != nil {
			t.Fatal(err)
		}
	}
	jobs := h.q.Take()
	var wg sync.WaitGroup
	errs := make(chan error, len(jobs))
	for _, j := range jobs {
		wg.Go(func() { errs <- h.mux.HandleJob(ctx, j) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	h.drain()
	if top := h.n.topLevel(); len(top) != 1 {
		t.Fatalf("concurrent deliveries of one alert posted %d messages", len(top))
	}
	if r := h.record("mackerel:c1"); r.Deliveries != 20 || len(r.Pending) != 0 || r.LeaseOwner != "" {
		t.Errorf("record after concurrent deliveries: deliveries=%d pending=%d lease=%q", r.Deliveries, len(r.Pending), r.LeaseOwner)
	}
}

func TestSilences(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.svc.AddSilence(ctx, Silence{Scope: Scope{Host: "app0*"}, Until: t0.Add(time.Hour), By: "U1"}); err != nil {
		t.Fatal(err)
	}
	h.ingest(mk("q1", StatusCritical, true, "app01", t0))
	if len(h.n.topLevel()) != 0 {
		t.Fatal("silenced alert was posted")
	}
	if r := h.record("mackerel:q1"); !strings.HasPrefix(r.Suppressed(h.clock.Now()), "silenced by s-") {
		t.Errorf("silenced record: %q", r.Suppressed(h.clock.Now()))
	}
	h.ingest(mk("q2", StatusCritical, true, "db01", t0))
	if len(h.n.topLevel()) != 1 {
		t.Fatal("alert outside the silence was not posted")
	}
	// Button silence on a shown alert: shown on the message, in the thread,
	// and the end of the silence is scheduled; ending it early re-renders.
	sil, err := h.svc.SilenceAlert(ctx, "mackerel:q2", "U2", t0.Add(4*time.Hour), "")
	if err != nil {
		t.Fatal(err)
	}
	h.drain()
	m := h.n.topLevel()[0]
	if m.rec.SilencedBy != "U2" || sil.Scope != (Scope{Host: "db01", Monitor: "CPU %"}) {
		t.Errorf("button silence: %+v %+v", m.rec, sil)
	}
	if _, err := h.svc.EndSilence(ctx, sil.ID, "U3"); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if m.rec.SilenceID != "" || m.edits != 2 {
		t.Errorf("after unsilence: %+v edits=%d", m.rec, m.edits)
	}
	active, err := h.svc.ActiveSilences(ctx)
	if err != nil || len(active) != 1 {
		t.Errorf("active silences = %d, %v", len(active), err)
	}
	for _, bad := range []Silence{
		{Until: t0.Add(time.Hour), By: "U1"},
		{Scope: Scope{Host: "x"}, Until: t0.Add(-time.Hour), By: "U1"},
		{Scope: Scope{Host: "x"}, Until: t0.Add(8 * 24 * time.Hour), By: "U1"},
	} {
		if _, err := h.svc.AddSilence(ctx, bad); err == nil {
			t.Errorf("invalid silence %+v accepted", bad)
		}
	}
}

func TestAck(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.ingest(mk("k1", StatusCritical, true, "app01", t0))
	if _, err := h.svc.Ack(ctx, "mackerel:k1", "U1"); err != nil {
		t.Fatal(err)
	}
	h.drain()
	m := h.n.topLevel()[0]
	if m.rec.AckedBy != "U1" || !m.rec.AckedAt.Equal(t0) || m.edits != 1 || m.threadLines()[0].Kind != LineAck {
		t.Errorf("ack: %+v", m)
	}
	if _, err := h.svc.Ack(ctx, "mackerel:k1", "U2"); !errors.Is(err, ErrAlreadyAcked) {
		t.Errorf("second ack: %v", err)
	}
	if _, err := h.svc.Ack(ctx, "mackerel:nope", "U2"); !errors.Is(err, ErrUnknownAlert) {
		t.Errorf("unknown ack: %v", err)
	}
	h.ingest(mk("k1", StatusOK, false, "app01", t0.Add(time.Minute)))
	if _, err := h.svc.Ack(ctx, "mackerel:k1", "U2"); !errors.Is(err, ErrClosedAlert) {
		t.Errorf("ack of closed: %v", err)
	}
}

func TestNotices(t *testing.T) {
	h := newHarness(t)
	n := Notice{Source: SourceMackerel, Key: "mackerel:hostRetire:abc", Kind: KindHostRetire, Title: "Host app01 retired"}
	h.ingest(Event{Kind: n.Kind, Notice: &n})
	h.ingest(Event{Kind: n.Kind, Notice: &n}) // a redelivery
	top := h.n.topLevel()
	if len(top) != 1 || top[0].notice == nil || top[0].channel != "CALL" {
		t.Fatalf("notice: %+v", top)
	}
}

func TestTomorrowAt(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		now  time.Time
		want time.Time
	}{
		{time.Date(2026, 3, 1, 23, 30, 0, 0, tokyo), time.Date(2026, 3, 2, 9, 0, 0, 0, tokyo)},
		{time.Date(2026, 3, 1, 0, 10, 0, 0, tokyo), time.Date(2026, 3, 2, 9, 0, 0, 0, tokyo)},
		{time.Date(2026, 3, 31, 15, 0, 0, 0, time.UTC), time.Date(2026, 4, 2, 9, 0, 0, 0, tokyo)}, // already Apr 1 in Tokyo
	}
	for _, tt := range tests {
		if got := TomorrowAt(tt.now, 9, tokyo); !got.Equal(tt.want) {
			t.Errorf("TomorrowAt(%s) = %s, want %s", tt.now, got, tt.want)
		}
	}
}

func TestScopeMatches(t *testing.T) {
	a := *mk("x", StatusCritical, true, "app01", t0).Alert
	tests := []struct {
		s    Scope
		want bool
	}{
		{Scope{}, false},
		{Scope{Host: "app01"}, true},
		{Scope{Host: "APP*"}, true},
		{Scope{Host: "db*"}, false},
		{Scope{Role: "web"}, true},
		{Scope{Role: "shop:web"}, true},
		{Scope{Role: "shop:db"}, false},
		{Scope{Monitor: "cpu %"}, true},
		{Scope{Monitor: "CPU %", Host: "db01"}, false},
	}
	for _, tt := range tests {
		if got := tt.s.Matches(a); got != tt.want {
			t.Errorf("%+v.Matches = %v, want %v", tt.s, got, tt.want)
		}
	}
}
