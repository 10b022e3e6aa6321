package slackfake

import (
	"math"
	"time"
)

// faults holds the fault switches. Guarded by Fake.mu.
type faults struct {
	status     map[string][]int // method ("" = any) -> statuses for the next calls
	rate       map[string]*rateFault
	perChannel int
	posts      map[string][]time.Time // channel -> recent chat.postMessage times
	latency    time.Duration
}

type rateFault struct {
	left       int
	retryAfter int       // seconds
	until      time.Time // RateLimitFor: 429 until then, by the fake's clock
}

func newFaults() faults {
	return faults{status: map[string][]int{}, rate: map[string]*rateFault{}, posts: map[string][]time.Time{}}
}

// RateLimit makes the next n calls of method ("" for any method) answer
// HTTP 429 with Retry-After set to retryAfter rounded up to whole seconds,
// as Slack does. A later call replaces an earlier one for the same method.
func (f *Fake) RateLimit(method string, n int, retryAfter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	secs := int(math.Ceil(retryAfter.Seconds()))
	f.faults.rate[method] = &rateFault{left: n, retryAfter: max(secs, 0)}
}

// RateLimitFor makes every call of method ("" for any method) answer HTTP
// 429 for d from now by the fake's clock, each with Retry-After set to the
// time left rounded up to whole seconds, as Slack holds a limited method:
// a client that honours Retry-After gets through as soon as the window
// ends. A later call replaces an earlier one for the same method.
func (f *Fake) RateLimitFor(method string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults.rate[method] = &rateFault{until: f.now().Add(d)}
}

// LimitChannelPosts enforces at most perSecond chat.postMessage calls per
// channel in any one-second window (by the fake's clock); a post over the
// limit answers 429 with Retry-After: 1. Zero turns the limit off.
// Slack's documented limit is about one message per second per channel.
func (f *Fake) LimitChannelPosts(perSecond int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults.perChannel = perSecond
	f.faults.posts = map[string][]time.Time{}
}

// FailNext makes the next n calls of method ("" for any method) answer
// HTTP status (typically 500 or 503) with an HTML body, as Slack's edge does.
func (f *Fake) FailNext(method string, n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.faults.status[method] = append(f.faults.status[method], status)
	}
}

// SetLatency delays every answer by d (0 for none). A client that gives up
// first gets no answer.
func (f *Fake) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults.latency = d
}

func (fs *faults) takeStatus(method string) (int, bool) {
	for _, key := range []string{method, ""} {
		if q := fs.status[key]; len(q) > 0 {
			fs.status[key] = q[1:]
			return q[0], true
		}
	}
	return 0, false
}

func (fs *faults) takeRateLimit(method string, now time.Time) (int, bool) {
	for _, key := range []string{method, ""} {
		r := fs.rate[key]
		switch {
		case r == nil:
		case r.left > 0:
			r.left--
			return r.retryAfter, true
		case r.until.After(now):
			return int(math.Ceil(r.until.Sub(now).Seconds())), true
		}
	}
	return 0, false
}

// allowPost applies the per-channel limit, recording the post if allowed.
func (fs *faults) allowPost(channel string, now time.Time) bool {
	if fs.perChannel <= 0 {
		return true
	}
	recent := fs.posts[channel][:0]
	for _, t := range fs.posts[channel] {
		if now.Sub(t) < time.Second {
			recent = append(recent, t)
		}
	}
	if len(recent) >= fs.perChannel {
		fs.posts[channel] = recent
		return false
	}
	fs.posts[channel] = append(recent, now)
	return true
}
