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

// TestReadBody: bodies of any size up to MaxBody+1 are read whole, whatever
// the Content-Length says (absent, exact, or larger than the up-front
// buffer), and the buffer taken on trust stays bounded.
func TestReadBody(t *testing.T) {
	for _, tt := range []struct {
		name  string
		size  int
		known bool // Content-Length set
	}{
		{"empty", 0, true},
		{"small", 100, true},
		{"small, chunked", 100, false},
		{"beyond the up-front buffer", presize + 10, true},
		{"too large", MaxBody + 5, true},
		{"too large, chunked", MaxBody + 5, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.Repeat("x", tt.size)
			r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(strings.NewReader(body)))
			r.ContentLength = -1
			if tt.known {
				r.ContentLength = int64(tt.size)
			}
			got, err := readBody(r)
			if want := min(tt.size, MaxBody+1); err != nil || len(got) != want {
				t.Fatalf("readBody = %d bytes, %v; want %d", len(got), err, want)
			}
		})
	}
	// A request announcing a megabyte it does not send gets no megabyte.
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("tiny"))
	r.ContentLength = MaxBody
	got, _ := readBody(r)
	if cap(got) > presize+1 {
		t.Errorf("buffer of %d bytes for a 4-byte body announced as %d", cap(got), MaxBody)
	}
}
