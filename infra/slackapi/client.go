// Package slackapi is tokken's outbound Slack Web API client. It wraps
// github.com/slack-go/slack with the calls tokken makes (post, update and
// delete messages, ephemerals, DMs, modals, user and user-group lookups,
// response_url posts), all taking a context, and adds what a bot that must
// not lose messages needs:
//
//   - Rate limits: an HTTP 429 is retried after exactly its Retry-After,
//     interruptible by the context, logged, and counted (RateLimitWaits,
//     Options.OnRateLimited) so metrics can report it. The window is shared:
//     until it ends, every call of the same method to the same channel, from
//     any goroutine, waits for it before calling (Slack limits per method,
//     and chat.postMessage per channel).
//   - Transient failures (HTTP 5xx, network errors, Slack's internal_error
//     and service_unavailable) are retried with exponential backoff and
//     jitter, up to Options.MaxAttempts attempts in all.
//   - views.open and views.push are never retried past the trigger_id's
//     3-second life: a wait that would outlast it fails fast instead.
//
// Logs carry the method, channel, attempt and status only: message text and
// blocks may hold credentials (DMs) and are never logged.
package slackapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
)

// TriggerLife is how long Slack honours a trigger_id.
const TriggerLife = 3 * time.Second

// Defaults for Options fields left zero.
const (
	DefaultMaxAttempts   = 4
	DefaultBaseBackoff   = 250 * time.Millisecond
	DefaultMaxBackoff    = 8 * time.Second
	DefaultMaxRetryAfter = 30 * time.Second
	DefaultHTTPTimeout   = 10 * time.Second
)

// MaxConnsPerHost is how many connections to Slack the default HTTP client
// opens and keeps open: more calls at once wait for one of them. Without
// the bound, a burst of clicks (each answered after its ack, so they do not
// queue behind each other) opened a connection per call beyond the idle
// pool and closed it after: a TCP and TLS handshake per call, 450 dials a
// second in the ack benchmark.
const MaxConnsPerHost = 32

// Options configures a Client. The zero value talks to slack.com with
// sensible retry limits.
type Options struct {
	// APIURL is the Web API base URL, ending in "/" (SLACK_API_URL);
	// default slack.APIURL ("https://slack.com/api/").
	APIURL string
	// HTTPClient sends the requests; default one with a 10 s timeout that
	// opens at most MaxConnsPerHost connections to Slack and keeps them.
	HTTPClient *http.Client
	// Logger receives one record per failed attempt and per completed call
	// (debug level); default slog.Default().
	Logger *slog.Logger
	// MaxAttempts bounds the attempts per call, the first included.
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape the exponential backoff after 5xx and
	// network errors: base·2ⁿ capped at max, then jittered to [½, 1]×.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxRetryAfter is the longest Retry-After the client waits out; a
	// longer one fails the call at once so the caller can reschedule.
	MaxRetryAfter time.Duration
	// OnRateLimited, if set, is called before every rate-limit wait with the
	// method and the wait (for metrics). It may be called concurrently.
	OnRateLimited func(method string, wait time.Duration)
	// Sleep waits d or until ctx is done (returning its error); default a
	// timer. Tests inject one to observe waits without spending them.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock of rate-limit windows; default time.Now. Tests pass
	// the clock their Sleep advances.
	Now func() time.Time
}

// Client calls the Slack Web API with a bot token. It is safe for
// concurrent use.
type Client struct {
	api    *slack.Client
	apiURL *url.URL
	log    *slog.Logger
	opts   Options

	rateLimitWaits atomic.Int64

	mu   sync.Mutex
	team string            // the token's team, once auth.test answered (Team)
	dms  map[string]string // user id -> DM channel id
	// limited holds, per method and channel, the end of the last
	// Retry-After Slack gave: calls made by other goroutines meanwhile
	// wait it out too instead of drawing more 429s.
	limited map[call]time.Time
}

// New returns a client using token (xoxb-…) and opts.
func New(token string, opts Options) *Client {
	if opts.APIURL == "" {
		opts.APIURL = slack.APIURL
	}
	if opts.HTTPClient == nil {
		// Keep enough idle connections to Slack for concurrent jobs: the
		// default transport keeps 2 per host, so bursts re-dial TLS.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxConnsPerHost = MaxConnsPerHost
		tr.MaxIdleConnsPerHost = MaxConnsPerHost
		opts.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout, Transport: tr}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = DefaultBaseBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	apiURL, err := url.Parse(opts.APIURL)
	if err != nil {
		apiURL = &url.URL{}
	}
	return &Client{
		api:     slack.New(token, slack.OptionAPIURL(opts.APIURL), slack.OptionHTTPClient(opts.HTTPClient)),
		apiURL:  apiURL,
		log:     opts.Logger.With("component", "slackapi"),
		opts:    opts,
		dms:     map[string]string{},
		limited: map[call]time.Time{},
	}
}

// RateLimitWaits is how many times the client has waited out a 429.
func (c *Client) RateLimitWaits() int64 { return c.rateLimitWaits.Load() }

// ErrorCode returns the Slack error code in err ("channel_not_found",
// "expired_trigger_id", …), "ratelimited" for a rate limit, or "" if err
// carries none.
func ErrorCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return "ratelimited"
	}
	return ""
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call describes one logical API call for retry and logging.
type call struct {
	method  string
	channel string
	// trigger marks calls that consume a trigger_id: no retry may end
	// after TriggerLife from the first attempt.
	trigger bool
}

// do runs fn until it succeeds, fails for good, or attempts run out.
func (c *Client) do(ctx context.Context, op call, fn func(context.Context) error) error {
	start := time.Now()
	var waited time.Time // the end of the window this call has waited out itself
	for attempt := 1; ; attempt++ {
		if err := c.waitLimited(ctx, op, start, attempt, waited); err != nil {
			return err
		}
		err := fn(ctx)
		if err == nil {
			c.log.DebugContext(ctx, "slack call", "method", op.method, "channel", op.channel,
				"attempt", attempt, "status", "ok")
			return nil
		}
		status := statusOf(err)
		wait, rateLimited, retry := c.retryAfter(ctx, err, attempt)
		if rateLimited {
			waited = c.limit(op, wait)
		}
		switch {
		case !retry:
		case attempt >= c.opts.MaxAttempts:
			retry = false
		case rateLimited && wait > c.opts.MaxRetryAfter:
			retry = false
			err = fmt.Errorf("retry-after %s exceeds the %s limit: %w", wait, c.opts.MaxRetryAfter, err)
		case op.trigger && time.Since(start)+wait >= TriggerLife:
			retry = false
			err = fmt.Errorf("trigger_id would expire before a retry in %s: %w", wait, err)
		}
		if !retry {
			c.log.WarnContext(ctx, "slack call failed", "method", op.method, "channel", op.channel,
				"attempt", attempt, "status", status)
			return fmt.Errorf("slack %s: %w", op.method, err)
		}
		if rateLimited {
			c.rateLimited(ctx, op, attempt, wait)
		} else {
			c.log.WarnContext(ctx, "slack call retrying", "method", op.method, "channel", op.channel,
				"attempt", attempt, "status", status, "wait", wait)
		}
		if serr := c.opts.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("slack %s: waiting %s to retry: %w (last error: %w)", op.method, wait, serr, err)
		}
	}
}

// rateLimited counts and logs a wait for a rate limit.
func (c *Client) rateLimited(ctx context.Context, op call, attempt int, wait time.Duration) {
	c.rateLimitWaits.Add(1)
	if c.opts.OnRateLimited != nil {
		c.opts.OnRateLimited(op.method, wait)
	}
	c.log.WarnContext(ctx, "slack rate limited", "method", op.method, "channel", op.channel,
		"attempt", attempt, "wait", wait)
}

// limit records that Slack asked for no more op calls for wait, and
// returns when the window for op's method and channel now ends.
func (c *Client) limit(op call, wait time.Duration) time.Time {
	until := c.opts.Now().Add(wait)
	key := call{method: op.method, channel: op.channel}
	c.mu.Lock()
	defer c.mu.Unlock()
	if until.After(c.limited[key]) {
		c.limited[key] = until
	}
	return c.limited[key]
}

// RateLimitedUntil reports when the rate-limit window Slack opened for
// method to channel (the Retry-After of a 429, "" channel for calls that
// name none) ends, or the zero time if none is open. A caller that paces
// its own calls defers work to then instead of starting a call that would
// only wait: every call made meanwhile waits the window out first.
func (c *Client) RateLimitedUntil(method, channel string) time.Time {
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if until := c.limited[call{method: method, channel: channel}]; until.After(now) {
		return until
	}
	return time.Time{}
}

// waitLimited waits out a rate-limit window another call opened for op's
// method and channel, if one is open and is not the one this call has
// already waited out (waited): the same limits as for a 429 of its own
// apply (MaxRetryAfter, the trigger_id's life).
func (c *Client) waitLimited(ctx context.Context, op call, start time.Time, attempt int, waited time.Time) error {
	key := call{method: op.method, channel: op.channel}
	now := c.opts.Now()
	c.mu.Lock()
	until, ok := c.limited[key]
	if ok && !until.After(now) {
		delete(c.limited, key)
	}
	c.mu.Unlock()
	wait := until.Sub(now)
	if !ok || wait <= 0 || until.Equal(waited) {
		return nil
	}
	switch {
	case wait > c.opts.MaxRetryAfter:
		return fmt.Errorf("slack %s: rate limited for %s more, beyond the %s limit", op.method, wait, c.opts.MaxRetryAfter)
	case op.trigger && time.Since(start)+wait >= TriggerLife:
		return fmt.Errorf("slack %s: rate limited for %s more: trigger_id would expire", op.method, wait)
	}
	c.rateLimited(ctx, op, attempt, wait)
	if err := c.opts.Sleep(ctx, wait); err != nil {
		return fmt.Errorf("slack %s: waiting out a rate limit of %s: %w", op.method, wait, err)
	}
	return nil
}

// retryAfter decides whether err is worth another attempt and after how
// long; rateLimited reports a 429 with Retry-After, honoured exactly.
func (c *Client) retryAfter(ctx context.Context, err error, attempt int) (wait time.Duration, rateLimited, retry bool) {
	if ctx.Err() != nil {
		return 0, false, false
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return rl.RetryAfter, true, true
	}
	var sce slack.StatusCodeError
	var ue *url.Error
	switch {
	case errors.As(err, &sce):
		retry = sce.Code >= 500 || sce.Code == http.StatusTooManyRequests
	case errors.As(err, &ue):
		retry = true // connection refused, reset, client timeout
	default:
		code := ErrorCode(err)
		retry = code == "internal_error" || code == "service_unavailable"
	}
	if !retry {
		return 0, false, false
	}
	return c.backoff(attempt), false, true
}

// backoff is the jittered exponential delay before attempt+1.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.opts.BaseBackoff
	for i := 1; i < attempt && d < c.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.opts.MaxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// statusOf names an error for logs without its text (which may hold a
// response_url).
func statusOf(err error) string {
	var rl *slack.RateLimitedError
	var sce slack.StatusCodeError
	switch {
	case errors.As(err, &rl):
		return "429"
	case errors.As(err, &sce):
		return strconv.Itoa(sce.Code)
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	}
	if code := ErrorCode(err); code != "" {
		return code
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return "network_error"
	}
	return "error"
}
