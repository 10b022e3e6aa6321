package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/handlers/slacksig"
)

func TestHandlerVerifies(t *testing.T) {
	const secret = "floor-secret"
	h := handler(secret, slog.New(slog.NewTextHandler(io.Discard, nil)))
	body := "command=%2Faccess&text=help"
	tests := []struct {
		name   string
		sign   func(r *http.Request)
		status int
	}{
		{"signed", func(r *http.Request) { slacksig.SignRequest(r, []byte(secret), time.Now(), []byte(body)) }, http.StatusOK},
		{"wrong secret", func(r *http.Request) { slacksig.SignRequest(r, []byte("other"), time.Now(), []byte(body)) }, http.StatusUnauthorized},
		{"stale", func(r *http.Request) {
			slacksig.SignRequest(r, []byte(secret), time.Now().Add(-10*time.Minute), []byte(body))
		}, http.StatusUnauthorized},
		{"unsigned", func(*http.Request) {}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/slack/commands", strings.NewReader(body))
		tt.sign(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, w.Code, tt.status)
		}
	}
}
