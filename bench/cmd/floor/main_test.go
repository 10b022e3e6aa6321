package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bench/loadgen"
	"github.com/tokken/tokken/handlers/slacksig"
	"github.com/tokken/tokken/testkit/slackfake"
)

func TestHandlerVerifies(t *testing.T) {
	const secret = "floor-secret"
	h := handler(secret, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
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

// TestHandlerPosts: with a poster, a verified click posts one ephemeral
// before its 200, a command posts nothing, and a refused request neither.
func TestHandlerPosts(t *testing.T) {
	const secret = "floor-secret"
	fake := slackfake.New(t)
	fake.AddChannel(loadgen.ChannelID, "bench")
	fake.AddUser(slackfake.User{ID: loadgen.UserID, Name: "bench"})
	h := handler(secret, slog.New(slog.NewTextHandler(io.Discard, nil)), fake.Client())
	send := func(path string, key []byte) int {
		body := "payload=%7B%7D"
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		slacksig.SignRequest(r, key, time.Now(), []byte(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	tests := []struct {
		path       string
		key        string
		status     int
		ephemerals int
	}{
		{"/slack/interactions", secret, http.StatusOK, 1},
		{"/slack/commands", secret, http.StatusOK, 1},
		{"/slack/interactions", "forged", http.StatusUnauthorized, 1},
		{"/slack/interactions", secret, http.StatusOK, 2},
	}
	for _, tt := range tests {
		if got := send(tt.path, []byte(tt.key)); got != tt.status {
			t.Errorf("%s signed with %q: status %d, want %d", tt.path, tt.key, got, tt.status)
		}
		if got := len(fake.Ephemerals(loadgen.UserID)); got != tt.ephemerals {
			t.Errorf("after %s signed with %q: %d ephemerals, want %d", tt.path, tt.key, got, tt.ephemerals)
		}
	}
}
