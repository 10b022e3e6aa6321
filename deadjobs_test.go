package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/infra/localqueue"
)

// TestJobSubjectNamesIdentifiersOnly: an alert about a given-up job names
// the ids in its payload, never other values (a response URL, user text).
func TestJobSubjectNamesIdentifiersOnly(t *testing.T) {
	tests := []struct {
		payload string
		want    string
	}{
		{`{"request_id":"r-1","extension_id":"x-2"}`, " for extension_id=x-2, request_id=r-1"},
		{`{"op_id":"d-1","reply_to":{"user":"U1","response_url":"https://hooks.slack.com/commands/T/1/secret"}}`, " for op_id=d-1"},
		{`{"id":"a-1","text":"db down","n":3}`, " for id=a-1"},
		{`{"input":{"Requester":"U1"},"response_url":"https://hooks.slack.com/x"}`, ""},
		{`[1,2]`, ""},
		{``, ""},
	}
	for _, tt := range tests {
		got := jobSubject(bot.Job{ID: "j", Kind: "k", Payload: json.RawMessage(tt.payload)})
		if got != tt.want {
			t.Errorf("jobSubject(%s) = %q, want %q", tt.payload, got, tt.want)
		}
		if strings.Contains(got, "hooks.slack.com") {
			t.Errorf("jobSubject(%s) leaks a response URL: %q", tt.payload, got)
		}
	}
}

// TestDeadLettersMessageNamesTheJobs: the dead-letter list alert names the
// jobs, oldest first, at most ten of them.
func TestDeadLettersMessageNamesTheJobs(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var recs []bot.Record
	for i := range 12 {
		d := localqueue.DeadLetter{
			Job: bot.Job{ID: fmt.Sprintf("d-%02d", i), Kind: "domain.command", Payload: json.RawMessage(fmt.Sprintf(`{"op_id":"d-%02d"}`, i))},
			At:  t0.Add(time.Duration(12-i) * time.Minute), // newest first in key order
		}
		data, _ := json.Marshal(d)
		recs = append(recs, bot.Record{Kind: localqueue.KindDeadLetter, Key: d.Job.ID, Data: data})
	}
	msg := deadLettersMessage(recs)
	for _, want := range []string{"12 job(s)", "domain.command d-11 for op_id=d-11; domain.command d-10", "and 2 more"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "d-01 ") || strings.Contains(msg, "d-00 ") {
		t.Errorf("message %q names more than the ten oldest", msg)
	}
}
