package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/handlers/lambdaevent"
	"github.com/tokken/tokken/infra/localqueue"
)

// Dead jobs: a job that failed for good (a permanent error, or every retry)
// is given up. Locally the in-process queue moves it to the store's
// dead-letter list; on Lambda SQS moves it to the job dead-letter queue,
// which the worker consumes. Either way it comes to giveUp, which hands it
// to the feature that owns its kind (a domain operation fails and its
// requester is told) or raises an alert naming it, so that nobody waits for
// work that will never run.

// checkJobGivenUp is the check name of the alert about a given-up job no
// feature took charge of (key "tokken:job_given_up:<job id>").
const checkJobGivenUp = "job_given_up"

// deadJobRetention is how long a given-up job stays in the store's
// dead-letter list on Lambda: the SQS dead-letter queue's retention.
const deadJobRetention = 14 * 24 * time.Hour

// giveUp hands the given-up job j to its feature, or alerts about it. A
// feature's error other than a permanent one is returned (the dead job is
// handed over again later); a permanent one means the feature cannot act on
// this job, and the generic alert is raised instead.
func (a *app) giveUp(ctx context.Context, j bot.Job, cause string) error {
	log := a.log.With("job_id", j.ID, "kind", j.Kind)
	handled, err := a.jobs.GiveUp(ctx, j, cause)
	if err != nil && !bot.IsPermanent(err) {
		return fmt.Errorf("give up %s job %s: %w", j.Kind, j.ID, err)
	}
	if err != nil {
		log.WarnContext(ctx, "the job's feature cannot act on it; raising the generic alert", "err", err)
		handled = false
	}
	body, _ := json.Marshal(j)
	log.ErrorContext(ctx, "job given up", "cause", cause, "handled_by_feature", handled, "job", string(body))
	if handled {
		return nil
	}
	if strings.HasPrefix(j.Kind, "alert.") {
		// Raising an alert about an alert job that died would queue the
		// same kind of job that just failed: the log line above and the
		// dead-letter list's alert carry it instead.
		return nil
	}
	msg := fmt.Sprintf("Job %s %s was given up (%s)%s: nothing will retry it. See docs/operations.md, \"Dead jobs\".",
		orUnknownKind(j.Kind), j.ID, cause, jobSubject(j))
	if err := alert.Report(ctx, a.queue, alert.Operational(checkJobGivenUp, j.ID, alert.StatusCritical, msg, time.Now())); err != nil {
		return fmt.Errorf("alert about given-up job %s: %w", j.ID, err)
	}
	return nil
}

// giveUpDead handles a message of the job dead-letter queue (Lambda): it is
// kept in the store's dead-letter list, where the dead-letter alert names
// it, then given up. The message is deleted from SQS once this succeeds.
func (a *app) giveUpDead(ctx context.Context, d lambdaevent.DeadJob) error {
	cause := "moved to the dead-letter queue after failing on every delivery"
	if d.DecodeErr != nil {
		cause = "not a tokken job: " + d.DecodeErr.Error()
	}
	if !d.SentAt.IsZero() {
		cause += ", first sent " + d.SentAt.UTC().Format(time.RFC3339)
	}
	now := time.Now().UTC()
	dl := localqueue.DeadLetter{Job: d.Job, Error: cause, At: now}
	if d.DecodeErr != nil {
		dl.Job.Payload, _ = json.Marshal(d.Body) // kept as a JSON string
	}
	data, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("keep dead job %s: %w", d.Job.ID, err)
	}
	_, err = a.store.Put(ctx, bot.Record{Kind: localqueue.KindDeadLetter, Key: d.Job.ID + "@" + d.MessageID, Data: data, ExpiresAt: now.Add(deadJobRetention)})
	switch {
	case errors.Is(err, bot.ErrConflict):
		// Kept by an earlier hand-over of this very message.
	case err != nil:
		return fmt.Errorf("keep dead job %s: %w", d.Job.ID, err)
	}
	return a.giveUp(ctx, d.Job, cause)
}

func orUnknownKind(kind string) string {
	if kind == "" {
		return "(of no known kind)"
	}
	return kind
}

// jobSubject names what a job was about from its payload's top-level
// identifiers ("id" and "…_id" fields: request_id, op_id, …), e.g.
// " for request_id=r-123". Only identifiers are shown: payloads may carry
// response URLs or user text that do not belong in an alert.
func jobSubject(j bot.Job) string {
	var fields map[string]any
	if json.Unmarshal(j.Payload, &fields) != nil {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		v, ok := fields[k].(string)
		if !ok || v == "" || len(v) > 128 || (k != "id" && !strings.HasSuffix(k, "_id")) {
			continue
		}
		parts = append(parts, k+"="+v)
	}
	if len(parts) == 0 {
		return ""
	}
	return " for " + strings.Join(parts, ", ")
}

// Operational alert checks run by the sweep.
const checkDeadLetters = "dlq_not_empty"

// reportDeadLetters keeps tokken's "dead-letter list not empty" alert in
// step with the store's dead-letter list (the local queue's dead jobs, and
// on Lambda those the worker took off the SQS dead-letter queue): critical,
// naming the jobs, while it holds any (updated when they change); OK once
// it is empty. subject tells the local list from the Lambda one.
func reportDeadLetters(ctx context.Context, store bot.Store, q bot.Queue, svc *alert.Service, subject string) error {
	dead, err := store.List(ctx, localqueue.KindDeadLetter, bot.KeyRange{}, 0)
	if err != nil {
		return fmt.Errorf("list dead letters: %w", err)
	}
	key := "tokken:" + checkDeadLetters + ":" + subject
	rec, err := svc.Get(ctx, key)
	open := err == nil && rec.Alert.Open
	if err != nil && !errors.Is(err, bot.ErrNotFound) {
		return err
	}
	if len(dead) == 0 {
		if open {
			return alert.Report(ctx, q, alert.Operational(checkDeadLetters, subject, alert.StatusOK, "the dead-letter list is empty", time.Now()))
		}
		return nil
	}
	msg := deadLettersMessage(dead)
	if open && rec.Alert.Message == msg {
		return nil
	}
	return alert.Report(ctx, q, alert.Operational(checkDeadLetters, subject, alert.StatusCritical, msg, time.Now()))
}

// deadLettersMessage names the jobs in the dead-letter list, oldest first,
// at most ten of them.
func deadLettersMessage(dead []bot.Record) string {
	const show = 10
	type named struct {
		at   time.Time
		name string
	}
	var jobs []named
	for _, r := range dead {
		var d localqueue.DeadLetter
		if json.Unmarshal(r.Data, &d) != nil {
			jobs = append(jobs, named{name: "(undecodable record " + r.Key + ")"})
			continue
		}
		kind := d.Job.Kind
		if kind == "" {
			kind = "(no kind)"
		}
		jobs = append(jobs, named{at: d.At, name: kind + " " + d.Job.ID + jobSubject(d.Job)})
	}
	slices.SortStableFunc(jobs, func(a, b named) int { return a.at.Compare(b.at) })
	var b strings.Builder
	fmt.Fprintf(&b, "%d job(s) were given up and wait in the dead-letter list (store kind %q): ", len(dead), localqueue.KindDeadLetter)
	for i, j := range jobs[:min(show, len(jobs))] {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(j.name)
	}
	if len(jobs) > show {
		fmt.Fprintf(&b, "; and %d more", len(jobs)-show)
	}
	return b.String()
}
