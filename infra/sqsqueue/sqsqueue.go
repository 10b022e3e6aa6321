// Package sqsqueue is the bot.Queue tokken uses on Lambda: jobs become
// messages on an Amazon SQS standard queue, which triggers the worker
// function.
//
// The message body is the bot.Job as JSON, and a "kind" message attribute
// repeats Job.Kind so that queue tooling (and CloudWatch/console inspection)
// can see what a message is without parsing it. [Encode] and [DecodeMessage]
// are the only encoding of a job on the wire: EventBridge Scheduler targets
// (infra/schedtimer) use Encode for their input, and the Lambda dispatcher
// uses DecodeMessage for every SQS record, whether a timer or Enqueue put it
// there.
package sqsqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/tokken/tokken/bot"
)

// MaxMessageSize is the largest message Enqueue sends: 256 KiB, a new SQS
// queue's default MaximumMessageSize, counted like SQS counts it (body plus
// message attribute names, types and values). Larger payloads belong in the
// Store, with the job carrying their id.
const MaxMessageSize = 256 * 1024

// KindAttribute is the message attribute holding Job.Kind.
const KindAttribute = "kind"

// ErrTooLarge is returned (wrapped) for a job whose message would exceed
// MaxMessageSize.
var ErrTooLarge = errors.New("job too large for SQS")

// Queue enqueues jobs on one SQS queue. It is safe for concurrent use.
type Queue struct {
	client *sqs.Client
	url    string
	now    func() time.Time
}

// New returns a Queue sending to queueURL through client.
func New(client *sqs.Client, queueURL string) *Queue {
	return &Queue{client: client, url: queueURL, now: time.Now}
}

// WithClock returns a copy of q that measures delivery delays from now
// instead of time.Now (for tests with a fake clock).
func (q *Queue) WithClock(now func() time.Time) *Queue {
	c := *q
	c.now = now
	return &c
}

// MaxDelay is the longest delivery delay SQS accepts for one message.
const MaxDelay = 900 * time.Second

// DelaySeconds is the SQS DelaySeconds for a job due at notBefore, seen at
// now: the remaining time rounded up to whole seconds (so the job never
// runs early), 0 for a zero or past notBefore, at most 900 (SQS's limit;
// a job due later is delivered after 15 minutes).
func DelaySeconds(notBefore, now time.Time) int32 {
	if notBefore.IsZero() {
		return 0
	}
	d := notBefore.Sub(now)
	if d <= 0 {
		return 0
	}
	if d >= MaxDelay {
		return int32(MaxDelay / time.Second)
	}
	return int32((d + time.Second - 1) / time.Second)
}

var _ bot.Queue = (*Queue)(nil)

// Enqueue sends j as one message, delayed until j.NotBefore (see
// [DelaySeconds]). Invalid or oversized jobs are refused
// before any call to SQS; SQS errors are returned after the SDK's retries.
func (q *Queue) Enqueue(ctx context.Context, j bot.Job) error {
	body, err := Encode(j)
	if err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	_, err = q.client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:     aws.String(q.url),
		MessageBody:  aws.String(body),
		DelaySeconds: DelaySeconds(j.NotBefore, q.now()),
		MessageAttributes: map[string]types.MessageAttributeValue{
			KindAttribute: {DataType: aws.String("String"), StringValue: aws.String(j.Kind)},
		},
	})
	if err != nil {
		return fmt.Errorf("enqueue %s job %s: %w", j.Kind, j.ID, err)
	}
	return nil
}

// Encode returns the message body for j: the job as JSON. It fails for a job
// without ID or Kind, with a payload that is not valid JSON, or whose message
// (with its kind attribute) would exceed MaxMessageSize ([ErrTooLarge]).
// Characters SQS refuses in a body (U+FFFE, U+FFFF and other
// non-characters outside its allowed ranges) are written as JSON escapes, so
// every valid job can be sent.
func Encode(j bot.Job) (string, error) {
	if j.ID == "" || j.Kind == "" {
		return "", fmt.Errorf("encode job: id and kind are required (id %q, kind %q)", j.ID, j.Kind)
	}
	b, err := json.Marshal(j)
	if err != nil {
		return "", fmt.Errorf("encode %s job %s: %w", j.Kind, j.ID, err)
	}
	body := escapeForSQS(string(b))
	if n := len(body) + len(KindAttribute) + len("String") + len(j.Kind); n > MaxMessageSize {
		return "", fmt.Errorf("encode %s job %s: %d bytes, limit %d: %w", j.Kind, j.ID, n, MaxMessageSize, ErrTooLarge)
	}
	return body, nil
}

// DecodeMessage parses an SQS message body written by [Encode] back into a
// job. A body that cannot be a job (not JSON, no id or kind) will never
// decode, so the error wraps bot.PermanentError: the dispatcher should
// dead-letter the message instead of retrying it.
func DecodeMessage(body string) (bot.Job, error) {
	var j bot.Job
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		return bot.Job{}, bot.Permanent(fmt.Errorf("decode SQS message: not a job: %w", err))
	}
	if j.ID == "" || j.Kind == "" {
		return bot.Job{}, bot.Permanent(fmt.Errorf("decode SQS message: job needs id and kind (id %q, kind %q)", j.ID, j.Kind))
	}
	return j, nil
}

// sqsAllowed reports whether SQS accepts r in a message body: #x9 | #xA |
// #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
func sqsAllowed(r rune) bool {
	switch {
	case r == 0x9, r == 0xA, r == 0xD:
		return true
	case r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD:
		return true
	case r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// escapeForSQS rewrites the characters SQS refuses as \uXXXX escapes. In
// JSON from encoding/json such characters can only occur inside strings
// (control characters are already escaped), where the escape means the
// same character.
func escapeForSQS(s string) string {
	ok := true
	for _, r := range s {
		if !sqsAllowed(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for _, r := range s {
		if sqsAllowed(r) {
			b.WriteRune(r)
			continue
		}
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}
