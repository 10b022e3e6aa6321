// Package slacksig signs and verifies Slack request signatures (v0 scheme):
// X-Slack-Signature = "v0=" + hex(HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)).
// Verification rejects timestamps more than five minutes away from now and
// compares in constant time. Sign is the same computation, used by tests and
// load generators to send requests exactly as Slack does.
package slacksig

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Header names Slack uses.
const (
	HeaderSignature = "X-Slack-Signature"
	HeaderTimestamp = "X-Slack-Request-Timestamp"
)

// MaxSkew is how far a request timestamp may be from now (either way).
const MaxSkew = 5 * time.Minute

// MaxBody is the largest request body accepted (1 MiB).
const MaxBody = 1 << 20

// Verification failures. Each is safe to show to the caller.
var (
	ErrMissing   = errors.New("missing signature or timestamp header")
	ErrTimestamp = errors.New("malformed timestamp")
	ErrStale     = errors.New("timestamp outside the 5-minute window")
	ErrSignature = errors.New("signature mismatch")
	ErrTooLarge  = errors.New("body larger than 1 MiB")
)

// Sign returns the v0 signature of body sent at ts (Unix seconds).
func Sign(secret []byte, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	fmt.Fprintf(mac, "v0:%d:", ts)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// SignRequest sets Slack's signature headers on r for body at time now.
func SignRequest(r *http.Request, secret []byte, now time.Time, body []byte) {
	ts := now.Unix()
	r.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	r.Header.Set(HeaderSignature, Sign(secret, ts, body))
}

// Verifier checks Slack signatures. Now may be nil (time.Now).
type Verifier struct {
	Secret []byte
	Now    func() time.Time
}

// Verify checks the signature headers h against body.
func (v Verifier) Verify(h http.Header, body []byte) error {
	sig, tsText := h.Get(HeaderSignature), h.Get(HeaderTimestamp)
	if sig == "" || tsText == "" {
		return ErrMissing
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := now().Sub(time.Unix(ts, 0))
	if skew > MaxSkew || skew < -MaxSkew {
		return ErrStale
	}
	want := Sign(v.Secret, ts, body)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return ErrSignature
	}
	return nil
}

// Middleware reads at most MaxBody bytes of the request, verifies it, and
// passes it on with the body restored. Failures are answered 401 (413 for
// an oversized body) with a one-line reason and logged without the body.
func (v Verifier) Middleware(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		status := http.StatusUnauthorized
		if len(body) > MaxBody {
			err, status = ErrTooLarge, http.StatusRequestEntityTooLarge
		} else {
			err = v.Verify(r.Header, body)
		}
		if err != nil {
			log.WarnContext(r.Context(), "slack request rejected",
				"path", r.URL.Path, "reason", err.Error(), "bytes", len(body),
				"retry_num", r.Header.Get("X-Slack-Retry-Num"))
			http.Error(w, "slack verification failed: "+err.Error(), status)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}
