package slacksig

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack).
const (
	exSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	exTS     = 1531420618
	exBody   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	exSig    = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

func TestSignMatchesSlackExample(t *testing.T) {
	if got := Sign([]byte(exSecret), exTS, []byte(exBody)); got != exSig {
		t.Fatalf("Sign = %s, want %s", got, exSig)
	}
}

func TestVerify(t *testing.T) {
	at := time.Unix(exTS, 0)
	hdr := func(sig, ts string) http.Header {
		h := http.Header{}
		if sig != "" {
			h.Set(HeaderSignature, sig)
		}
		if ts != "" {
			h.Set(HeaderTimestamp, ts)
		}
		return h
	}
	ts := strconv.Itoa(exTS)
	tampered := strings.Replace(exBody, "roadrunner", "coyote", 1)
	cases := []struct {
		name string
		now  time.Time
		h    http.Header
		body string
		want error
	}{
		{"slack example", at, hdr(exSig, ts), exBody, nil},
		{"4m59s late", at.Add(MaxSkew - time.Second), hdr(exSig, ts), exBody, nil},
		{"stale", at.Add(MaxSkew + time.Second), hdr(exSig, ts), exBody, ErrStale},
		{"from the future", at.Add(-MaxSkew - time.Second), hdr(exSig, ts), exBody, ErrStale},
		{"tampered body", at, hdr(exSig, ts), tampered, ErrSignature},
		{"wrong secret", at, hdr(Sign([]byte("other"), exTS, []byte(exBody)), ts), exBody, ErrSignature},
		{"timestamp swapped", at, hdr(exSig, strconv.Itoa(exTS+1)), exBody, ErrSignature},
		{"no signature", at, hdr("", ts), exBody, ErrMissing},
		{"no timestamp", at, hdr(exSig, ""), exBody, ErrMissing},
		{"bad timestamp", at, hdr(exSig, "yesterday"), exBody, ErrTimestamp},
		{"truncated signature", at, hdr(exSig[:20], ts), exBody, ErrSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := Verifier{Secret: []byte(exSecret), Now: func() time.Time { return c.now }}
			if err := v.Verify(c.h, []byte(c.body)); !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
		})
	}
}

func TestMiddleware(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	v := Verifier{Secret: secret, Now: func() time.Time { return now }}
	var got string
	h := v.Middleware(slog.New(slog.DiscardHandler), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	}))
	send := func(body string, sign func(*http.Request)) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/slack/commands", strings.NewReader(body))
		sign(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := send("a=1", func(r *http.Request) { SignRequest(r, secret, now, []byte("a=1")) })
	if w.Code != http.StatusOK || got != "a=1" {
		t.Fatalf("signed request: code %d, body seen %q", w.Code, got)
	}
	w = send("a=2", func(r *http.Request) { SignRequest(r, secret, now, []byte("a=1")) })
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "signature mismatch") {
		t.Fatalf("tampered: code %d body %q", w.Code, w.Body)
	}
	big := strings.Repeat("x", MaxBody+1)
	w = send(big, func(r *http.Request) { SignRequest(r, secret, now, []byte(big)) })
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized: code %d", w.Code)
	}
}

// BenchmarkVerify is what every Slack request costs before anything else
// runs: the HMAC of Slack's documented example body.
func BenchmarkVerify(b *testing.B) {
	h := http.Header{}
	h.Set(HeaderSignature, exSig)
	h.Set(HeaderTimestamp, strconv.Itoa(exTS))
	v := Verifier{Secret: []byte(exSecret), Now: func() time.Time { return time.Unix(exTS, 0) }}
	b.SetBytes(int64(len(exBody)))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(h, []byte(exBody)); err != nil {
			b.Fatal(err)
		}
	}
}
