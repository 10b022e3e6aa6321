package awsfake

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// What Lambda and SQS do around a queue, for tests that run a function as
// deployed: the queue's visibility timeout and redrive policy, and the SQS
// event source mapping that polls a queue and invokes the function with
// batches (see [SQS.EventSource]). None of it is an API call, so none of it
// is recorded in [Fake.Calls].

// SetVisibilityTimeout sets queue name's VisibilityTimeout (the default
// for ReceiveMessage and for [SQS.EventSource]).
func (q *SQS) SetVisibilityTimeout(name string, d time.Duration) error {
	var err error
	q.f.update(func() {
		qu, ok := q.queues[name]
		if !ok {
			err = fmt.Errorf("no queue %q", name)
			return
		}
		qu.visibility = int(d / time.Second)
	})
	return err
}

// SetRedrivePolicy gives queue name a RedrivePolicy: a message that has
// been received maxReceiveCount times is moved to the queue deadLetter
// (keeping its id, body, attributes and send time) instead of being
// delivered again, as SQS does.
func (q *SQS) SetRedrivePolicy(name, deadLetter string, maxReceiveCount int) error {
	var err error
	q.f.update(func() {
		qu, ok := q.queues[name]
		if _, dok := q.queues[deadLetter]; !ok || !dok || maxReceiveCount < 1 {
			err = fmt.Errorf("redrive %q to %q after %d receives: no such queue or bad count", name, deadLetter, maxReceiveCount)
			return
		}
		qu.redrive = &redrivePolicy{deadLetter: deadLetter, maxReceiveCount: maxReceiveCount}
	})
	return err
}

// visibilityOf returns the visibility timeout (seconds) of the queue at
// queueURL, 30 when there is none.
func (q *SQS) visibilityOf(queueURL string) int {
	q.f.mu.Lock()
	defer q.f.mu.Unlock()
	if qu, aerr := q.queueByURLLocked(queueURL); aerr == nil {
		return qu.visibility
	}
	return 30
}

// receivableLocked returns up to max messages of qu visible at now, moving
// those past the redrive policy's receive count to the dead-letter queue
// first; f.mu must be held.
func (q *SQS) receivableLocked(qu *queue, max int, now time.Time) []*Message {
	var out []*Message
	for _, m := range slices.Clone(qu.messages) {
		if len(out) == max {
			break
		}
		if now.Before(m.VisibleAt) {
			continue
		}
		if rp := qu.redrive; rp != nil && m.ReceiveCount >= rp.maxReceiveCount {
			if dlq, ok := q.queues[rp.deadLetter]; ok {
				qu.messages = slices.DeleteFunc(qu.messages, func(x *Message) bool { return x == m })
				moved := *m
				moved.ReceiveCount, moved.VisibleAt, moved.receiptHandle = 0, now, ""
				dlq.messages = append(dlq.messages, &moved)
				q.f.notifyLocked() // wake the dead-letter queue's receivers
				continue
			}
		}
		out = append(out, m)
	}
	return out
}

// nextVisibleLocked returns when the first message of qu that is not
// visible at now becomes visible (zero when none); f.mu must be held.
func nextVisibleLocked(qu *queue, now time.Time) time.Time {
	var next time.Time
	for _, m := range qu.messages {
		if m.VisibleAt.After(now) && (next.IsZero() || m.VisibleAt.Before(next)) {
			next = m.VisibleAt
		}
	}
	return next
}

// EventSource plays Lambda's SQS event source mapping for queue name with
// ReportBatchItemFailures: whenever messages are visible it takes up to
// batchSize of them (each received once more, hidden for the queue's
// visibility timeout, redriven by its redrive policy), calls invoke with
// them as an SQS event, and deletes those the response does not list as
// failed (none when invoke returns an error). Failed messages become
// visible again when their visibility timeout ends. It waits without
// polling: it wakes on every change to the fake and when the next delayed
// or hidden message becomes visible (by the fake's clock, measured in real
// time). It returns when ctx ends.
func (q *SQS) EventSource(ctx context.Context, name string, batchSize int, invoke func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)) error {
	for {
		q.f.mu.Lock()
		ch := q.f.changed
		qu, ok := q.queues[name]
		if !ok {
			q.f.mu.Unlock()
			return fmt.Errorf("awsfake: event source: no queue %q", name)
		}
		now := q.f.now()
		taken := q.receivableLocked(qu, batchSize, now)
		var ev events.SQSEvent
		handles := map[string]string{}
		for _, m := range taken {
			m.ReceiveCount++
			m.VisibleAt = now.Add(time.Duration(qu.visibility) * time.Second)
			q.seq++
			m.receiptHandle = base64.RawURLEncoding.EncodeToString([]byte(qu.name + "\x00" + m.ID + "\x00" + strconv.Itoa(q.seq)))
			handles[m.ID] = m.receiptHandle
			ev.Records = append(ev.Records, eventRecord(qu, m))
		}
		next := nextVisibleLocked(qu, now)
		if len(taken) > 0 {
			q.f.notifyLocked()
		}
		q.f.mu.Unlock()

		if len(taken) == 0 {
			if !waitChange(ctx, ch, next.Sub(now), !next.IsZero()) {
				return nil
			}
			continue
		}
		resp, err := invoke(ctx, ev)
		if ctx.Err() != nil {
			return nil
		}
		done := map[string]bool{}
		if err == nil {
			for id := range handles {
				done[id] = true
			}
			for _, f := range resp.BatchItemFailures {
				delete(done, f.ItemIdentifier)
			}
		}
		q.f.update(func() {
			qu.messages = slices.DeleteFunc(qu.messages, func(m *Message) bool {
				return done[m.ID] && m.receiptHandle == handles[m.ID]
			})
		})
	}
}

// eventRecord is m as Lambda hands it to a function.
func eventRecord(qu *queue, m *Message) events.SQSMessage {
	r := events.SQSMessage{
		MessageId: m.ID, ReceiptHandle: m.receiptHandle, Body: m.Body, Md5OfBody: md5Hex(m.Body),
		Attributes: map[string]string{
			"ApproximateReceiveCount": strconv.Itoa(m.ReceiveCount),
			"SentTimestamp":           strconv.FormatInt(m.Sent.UnixMilli(), 10),
			"SenderId":                "AROAFAKETOKKEN",
		},
		EventSourceARN: qu.arn, EventSource: "aws:sqs", AWSRegion: Region,
	}
	if len(m.Attributes) > 0 {
		r.MessageAttributes = map[string]events.SQSMessageAttribute{}
		r.Md5OfMessageAttributes = attributesMD5(m.Attributes)
		for k, a := range m.Attributes {
			ea := events.SQSMessageAttribute{DataType: a.DataType, BinaryValue: a.BinaryValue}
			if a.StringValue != "" {
				v := a.StringValue
				ea.StringValue = &v
			}
			r.MessageAttributes[k] = ea
		}
	}
	return r
}

// Run plays EventBridge Scheduler for group: every at() schedule fires at
// its time by the fake's clock ([Scheduler.Fire]), until ctx ends. It
// waits without polling, waking on every change to the fake and at the
// next schedule's time. A schedule that cannot fire ends Run with the
// error.
func (s *Scheduler) Run(ctx context.Context, group string) error {
	for {
		s.f.mu.Lock()
		ch := s.f.changed
		s.f.mu.Unlock()
		now := s.f.Now()
		if _, err := s.FireDue(group, now); err != nil {
			return err
		}
		var next time.Time
		for _, sc := range s.Schedules(group) {
			if at, ok := sc.At(); ok && sc.State != "DISABLED" && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
		if !waitChange(ctx, ch, next.Sub(now), !next.IsZero()) {
			return nil
		}
	}
}

// waitChange waits until ch is closed (the fake changed), d has passed
// (when timed), or ctx ends; it reports false for the last.
func waitChange(ctx context.Context, ch <-chan struct{}, d time.Duration, timed bool) bool {
	var wake <-chan time.Time
	if timed {
		t := time.NewTimer(max(d, 0))
		defer t.Stop()
		wake = t.C
	}
	select {
	case <-ch:
	case <-wake:
	case <-ctx.Done():
		return false
	}
	return true
}
