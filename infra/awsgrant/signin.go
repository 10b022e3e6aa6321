package awsgrant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tokken/tokken/bot/access"
	"github.com/tokken/tokken/infra/awsconfig"
)

// Console session limits for getSigninToken's SessionDuration. tokken's
// credentials come from role chaining (the worker is itself a role), for
// which AWS refuses console sessions longer than an hour.
const (
	minConsoleSeconds = 900
	maxConsoleSeconds = 3600
)

// maxSigninBody bounds the getSigninToken response read into memory.
const maxSigninBody = 64 << 10

// federationURL is the federation endpoint of an ARN partition.
func federationURL(partition string) string {
	switch partition {
	case "aws-cn":
		return "https://signin.amazonaws.cn/federation"
	case "aws-us-gov":
		return "https://signin.amazonaws-us-gov.com/federation"
	}
	return "https://signin.aws.amazon.com/federation"
}

// ConsoleDestination returns the console page a sign-in link for a grant of
// kind opens in region: Session Manager for ssm grants, the console home
// otherwise, on the console host of region's partition.
func ConsoleDestination(region string, kind access.Kind) string {
	var host string
	switch awsconfig.Partition(region) {
	case "aws-cn":
		host = "https://console.amazonaws.cn/"
	case "aws-us-gov":
		host = "https://console.amazonaws-us-gov.com/"
	default:
		host = "https://" + region + ".console.aws.amazon.com/"
	}
	page := "console/home"
	if kind == access.KindSSM {
		page = "systems-manager/session-manager"
	}
	return host + page + "?region=" + url.QueryEscape(region)
}

// SigninURL returns a console sign-in link for c (valid 15 minutes, for
// whoever holds it: deliver it like the credentials themselves). It asks the
// federation endpoint for a sign-in token with SessionDuration set to the
// credentials' remaining lifetime clamped to [900, 3600] seconds, then
// builds the Action=login URL opening [Options.Destination] or
// [ConsoleDestination] for kind. Neither URL is ever logged, and errors name
// the failed step only: both carry the credentials or a token.
func (g *Granter) SigninURL(ctx context.Context, c access.Credentials, kind access.Kind) (string, error) {
	if c.AccessKeyID == "" || c.SecretAccessKey == "" || c.SessionToken == "" {
		return "", errors.New("console sign-in: incomplete credentials")
	}
	left := c.Expiration.Sub(g.opts.Now())
	if left <= 0 {
		return "", errors.New("console sign-in: the credentials have expired")
	}
	secs := int(math.Ceil(left.Seconds()))
	secs = min(max(secs, minConsoleSeconds), maxConsoleSeconds)

	base, err := url.Parse(g.opts.FederationURL)
	if err != nil || base.Scheme == "" || base.Host == "" {
		return "", errors.New("console sign-in: the federation URL is not an absolute URL")
	}
	sess, err := json.Marshal(struct {
		ID    string `json:"sessionId"`
		Key   string `json:"sessionKey"`
		Token string `json:"sessionToken"`
	}{c.AccessKeyID, c.SecretAccessKey, c.SessionToken})
	if err != nil {
		return "", errors.New("console sign-in: encode session")
	}
	tokenURL := *base
	tokenURL.RawQuery = url.Values{
		"Action":          {"getSigninToken"},
		"SessionDuration": {strconv.Itoa(secs)},
		"Session":         {string(sess)},
	}.Encode()
	token, err := g.signinToken(ctx, tokenURL.String())
	if err != nil {
		return "", err
	}

	dest := g.opts.Destination
	if dest == "" {
		dest = ConsoleDestination(g.region, kind)
	}
	loginURL := *base
	loginURL.RawQuery = url.Values{
		"Action":      {"login"},
		"Issuer":      {g.opts.Issuer},
		"Destination": {dest},
		"SigninToken": {token},
	}.Encode()
	return loginURL.String(), nil
}

// signinToken calls getSigninToken at u, retrying throttling, server errors
// and connection failures with the SDK's retryer.
func (g *Granter) signinToken(ctx context.Context, u string) (string, error) {
	r := g.retryer()
	for attempt := 1; ; attempt++ {
		tok, err := g.getSigninToken(ctx, u)
		if err == nil {
			return tok, nil
		}
		if ctx.Err() != nil || attempt >= r.MaxAttempts() || !r.IsErrorRetryable(err) {
			return "", fmt.Errorf("console sign-in: getSigninToken: %w", err)
		}
		delay, derr := r.RetryDelay(attempt, err)
		if derr != nil {
			return "", fmt.Errorf("console sign-in: getSigninToken: %w", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("console sign-in: getSigninToken: %w", context.Cause(ctx))
		}
	}
}

// statusError is a non-200 federation response. Its HTTPStatusCode and
// ErrorCode methods let the SDK retryer classify it (5xx retryable, 429 a
// throttle).
type statusError struct{ status int }

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d", e.status) }

// HTTPStatusCode reports the response status.
func (e *statusError) HTTPStatusCode() int { return e.status }

// ErrorCode names 429 as a throttle for the retryer.
func (e *statusError) ErrorCode() string {
	if e.status == http.StatusTooManyRequests {
		return "TooManyRequestsException"
	}
	return ""
}

// getSigninToken makes one getSigninToken request. Its errors never contain
// the URL (which carries the credentials) or the body.
func (g *Granter) getSigninToken(ctx context.Context, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", errors.New("build request")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := g.http.Do(req)
	if err != nil {
		// *url.Error repeats the URL: keep only the cause (a network
		// or context error, which the retryer classifies).
		var ue *url.Error
		if errors.As(err, &ue) {
			return "", ue.Err
		}
		return "", errors.New("request failed")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxSigninBody))
		return "", &statusError{status: resp.StatusCode}
	}
	var out struct{ SigninToken string }
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxSigninBody)).Decode(&out); err != nil {
		return "", errors.New("response is not JSON")
	}
	if out.SigninToken == "" {
		return "", errors.New("response has no SigninToken")
	}
	return out.SigninToken, nil
}
