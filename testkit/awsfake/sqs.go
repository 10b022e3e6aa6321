package awsfake

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SQS fakes Amazon SQS standard queues (AWS JSON 1.0, query-compatible
// errors). Queues are created by the test with [SQS.CreateQueue].
type SQS struct {
	f      *Fake
	queues map[string]*queue // by name; guarded by f.mu
	seq    int               // message counter; guarded by f.mu
}

// DefaultMaxMessageSize is a new queue's MaximumMessageSize (256 KiB), the
// limit on body plus message attributes.
const DefaultMaxMessageSize = 256 * 1024

type queue struct {
	name     string
	url      string
	arn      string
	maxSize  int
	messages []*Message
	pollers  int // ReceiveMessage calls long-polling right now
	// visibility is the queue's VisibilityTimeout in seconds (default 30).
	visibility int
	// redrive, when set, moves a message received maxReceiveCount times
	// to the dead-letter queue instead of delivering it again.
	redrive *redrivePolicy
}

// redrivePolicy is a queue's RedrivePolicy.
type redrivePolicy struct {
	deadLetter      string // queue name
	maxReceiveCount int
}

// Message is a message held by a fake queue.
type Message struct {
	ID           string
	Body         string
	Attributes   map[string]MessageAttribute
	ReceiveCount int
	Sent         time.Time
	// VisibleAt is when the message can next be received: its send time
	// plus DelaySeconds, then the end of each visibility timeout.
	VisibleAt     time.Time
	receiptHandle string
}

// MessageAttribute is an SQS message attribute value.
type MessageAttribute struct {
	DataType    string `json:"DataType"`
	StringValue string `json:"StringValue,omitempty"`
	BinaryValue []byte `json:"BinaryValue,omitempty"`
}

// CreateQueue creates a standard queue and returns its URL and ARN. Creating
// an existing queue returns the existing one.
func (q *SQS) CreateQueue(name string) (queueURL, arn string) {
	q.f.update(func() {
		if qu, ok := q.queues[name]; ok {
			queueURL, arn = qu.url, qu.arn
			return
		}
		qu := &queue{
			name:       name,
			url:        q.f.srv.URL + "/" + AccountID + "/" + name,
			arn:        "arn:aws:sqs:" + Region + ":" + AccountID + ":" + name,
			maxSize:    DefaultMaxMessageSize,
			visibility: 30,
		}
		q.queues[name] = qu
		queueURL, arn = qu.url, qu.arn
	})
	return queueURL, arn
}

// Send puts body on queue name without an API call (what an event source or
// Scheduler does). It returns the message id.
func (q *SQS) Send(name, body string) (string, error) {
	return q.SendDelayed(name, body, 0)
}

// SendDelayed is Send with SendMessage's DelaySeconds: the message becomes
// visible after delay.
func (q *SQS) SendDelayed(name, body string, delay time.Duration) (string, error) {
	var id string
	var err error
	q.f.update(func() {
		qu, ok := q.queues[name]
		if !ok {
			err = fmt.Errorf("no queue %q", name)
			return
		}
		now := q.f.now()
		id = q.enqueueLocked(qu, body, nil, now)
		qu.messages[len(qu.messages)-1].VisibleAt = now.Add(delay)
	})
	return id, err
}

// Messages returns copies of every message still in the queue (visible or
// in flight), oldest first.
func (q *SQS) Messages(name string) []Message {
	q.f.mu.Lock()
	defer q.f.mu.Unlock()
	qu, ok := q.queues[name]
	if !ok {
		return nil
	}
	out := make([]Message, 0, len(qu.messages))
	for _, m := range qu.messages {
		c := *m
		c.Attributes = maps.Clone(m.Attributes)
		out = append(out, c)
	}
	return out
}

// Drain removes and returns every message in the queue, oldest first.
func (q *SQS) Drain(name string) []Message {
	out := q.Messages(name)
	q.f.update(func() {
		if qu, ok := q.queues[name]; ok {
			qu.messages = nil
		}
	})
	return out
}

// enqueueLocked appends a message; f.mu must be held.
func (q *SQS) enqueueLocked(qu *queue, body string, attrs map[string]MessageAttribute, now time.Time) string {
	q.seq++
	h := randomHex(16)
	id := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	qu.messages = append(qu.messages, &Message{ID: id, Body: body, Attributes: attrs, Sent: now, VisibleAt: now})
	return id
}

// queueByURL resolves a QueueUrl like SQS: the account and name are the last
// two path segments, whatever the host.
func (q *SQS) queueByURLLocked(u string) (*queue, *apiError) {
	parts := strings.Split(strings.TrimRight(u, "/"), "/")
	if len(parts) >= 2 {
		if qu, ok := q.queues[parts[len(parts)-1]]; ok && parts[len(parts)-2] == AccountID {
			return qu, nil
		}
	}
	return nil, &apiError{status: 400, code: "QueueDoesNotExist", queryCode: "AWS.SimpleQueueService.NonExistentQueue",
		msg: "The specified queue does not exist.", sender: true}
}

func sqsInvalid(format string, args ...any) *apiError {
	return clientErr("InvalidParameterValue", format, args...)
}

// validBody reports whether s holds only the characters SQS accepts:
// #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
func validBody(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == 0x9, r == 0xA, r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

// messageSize is what SQS counts against MaximumMessageSize: body plus each
// attribute's name, type and value.
func messageSize(body string, attrs map[string]MessageAttribute) int {
	n := len(body)
	for k, a := range attrs {
		n += len(k) + len(a.DataType) + len(a.StringValue) + len(a.BinaryValue)
	}
	return n
}

// checkMessage validates one message like SendMessage does.
func checkMessage(qu *queue, body string, attrs map[string]MessageAttribute) *apiError {
	if body == "" {
		return clientErr("MissingParameter", "The request must contain the parameter MessageBody.")
	}
	if !validBody(body) {
		return &apiError{status: 400, code: "InvalidMessageContents", msg: "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF", sender: true}
	}
	if len(attrs) > 10 {
		return sqsInvalid("Number of message attributes [%d] exceeds the allowed maximum [10].", len(attrs))
	}
	for k, a := range attrs {
		switch {
		case strings.HasPrefix(a.DataType, "String"), strings.HasPrefix(a.DataType, "Number"):
			if a.StringValue == "" {
				return sqsInvalid("Message (user) attribute '%s' must contain a non-empty value of type '%s'.", k, a.DataType)
			}
		case strings.HasPrefix(a.DataType, "Binary"):
			if len(a.BinaryValue) == 0 {
				return sqsInvalid("Message (user) attribute '%s' must contain a non-empty value of type 'Binary'.", k)
			}
		default:
			return sqsInvalid("The type of message (user) attribute '%s' is invalid. You must use only the following supported type prefixes: Binary, Number, String.", k)
		}
	}
	if n := messageSize(body, attrs); n > qu.maxSize {
		return sqsInvalid("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", qu.maxSize)
	}
	return nil
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// attributesMD5 computes MD5OfMessageAttributes the way SQS does: attributes
// sorted by name, each encoded as length-prefixed name, length-prefixed data
// type, a transport byte (1 string, 2 binary) and the length-prefixed value.
func attributesMD5(attrs map[string]MessageAttribute) string {
	if len(attrs) == 0 {
		return ""
	}
	h := md5.New()
	put := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		a := attrs[k]
		put([]byte(k))
		put([]byte(a.DataType))
		if strings.HasPrefix(a.DataType, "Binary") {
			h.Write([]byte{2})
			put(a.BinaryValue)
		} else {
			h.Write([]byte{1})
			put([]byte(a.StringValue))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

type sqsSendInput struct {
	QueueURL          string                      `json:"QueueUrl"`
	MessageBody       string                      `json:"MessageBody"`
	DelaySeconds      int                         `json:"DelaySeconds"`
	MessageAttributes map[string]MessageAttribute `json:"MessageAttributes"`
}

func (q *SQS) sendMessage(r *request) (any, *apiError) {
	var in sqsSendInput
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	if in.DelaySeconds < 0 || in.DelaySeconds > 900 {
		return nil, sqsInvalid("Value %d for parameter DelaySeconds is invalid. Reason: must be between 0 and 900.", in.DelaySeconds)
	}
	var id string
	var aerr *apiError
	q.f.update(func() {
		var qu *queue
		if qu, aerr = q.queueByURLLocked(in.QueueURL); aerr != nil {
			return
		}
		if aerr = checkMessage(qu, in.MessageBody, in.MessageAttributes); aerr != nil {
			return
		}
		id = q.enqueueLocked(qu, in.MessageBody, in.MessageAttributes, r.now)
		qu.messages[len(qu.messages)-1].VisibleAt = r.now.Add(time.Duration(in.DelaySeconds) * time.Second)
	})
	if aerr != nil {
		return nil, aerr
	}
	out := map[string]string{"MessageId": id, "MD5OfMessageBody": md5Hex(in.MessageBody)}
	if m := attributesMD5(in.MessageAttributes); m != "" {
		out["MD5OfMessageAttributes"] = m
	}
	return out, nil
}

func (q *SQS) sendMessageBatch(r *request) (any, *apiError) {
	var in struct {
		QueueURL string `json:"QueueUrl"`
		Entries  []struct {
			ID string `json:"Id"`
			sqsSendInput
		}
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	switch {
	case len(in.Entries) == 0:
		return nil, &apiError{status: 400, code: "EmptyBatchRequest", queryCode: "AWS.SimpleQueueService.EmptyBatchRequest", msg: "There should be at least one SendMessageBatchRequestEntry in the request.", sender: true}
	case len(in.Entries) > 10:
		return nil, &apiError{status: 400, code: "TooManyEntriesInBatchRequest", queryCode: "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", msg: fmt.Sprintf("Maximum number of entries per request are 10. You have sent %d.", len(in.Entries)), sender: true}
	}
	seen := map[string]bool{}
	total := 0
	for _, e := range in.Entries {
		if seen[e.ID] {
			return nil, &apiError{status: 400, code: "BatchEntryIdsNotDistinct", queryCode: "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", msg: fmt.Sprintf("Id %s repeated.", e.ID), sender: true}
		}
		seen[e.ID] = true
		total += messageSize(e.MessageBody, e.MessageAttributes)
	}
	type failed struct {
		ID          string `json:"Id"`
		Code        string `json:"Code"`
		Message     string `json:"Message"`
		SenderFault bool   `json:"SenderFault"`
	}
	out := struct {
		Successful []map[string]string `json:"Successful"`
		Failed     []failed            `json:"Failed"`
	}{Successful: []map[string]string{}, Failed: []failed{}}
	var aerr *apiError
	q.f.update(func() {
		var qu *queue
		if qu, aerr = q.queueByURLLocked(in.QueueURL); aerr != nil {
			return
		}
		if total > qu.maxSize {
			aerr = &apiError{status: 400, code: "BatchRequestTooLong", queryCode: "AWS.SimpleQueueService.BatchRequestTooLong",
				msg: fmt.Sprintf("Batch requests cannot be longer than %d bytes. You have sent %d bytes.", qu.maxSize, total), sender: true}
			return
		}
		for _, e := range in.Entries {
			if bad := checkMessage(qu, e.MessageBody, e.MessageAttributes); bad != nil {
				out.Failed = append(out.Failed, failed{ID: e.ID, Code: bad.code, Message: bad.msg, SenderFault: true})
				continue
			}
			id := q.enqueueLocked(qu, e.MessageBody, e.MessageAttributes, r.now)
			qu.messages[len(qu.messages)-1].VisibleAt = r.now.Add(time.Duration(e.DelaySeconds) * time.Second)
			ok := map[string]string{"Id": e.ID, "MessageId": id, "MD5OfMessageBody": md5Hex(e.MessageBody)}
			if m := attributesMD5(e.MessageAttributes); m != "" {
				ok["MD5OfMessageAttributes"] = m
			}
			out.Successful = append(out.Successful, ok)
		}
	})
	if aerr != nil {
		return nil, aerr
	}
	return out, nil
}

type sqsReceiveInput struct {
	QueueURL                    string   `json:"QueueUrl"`
	MaxNumberOfMessages         *int     `json:"MaxNumberOfMessages"`
	VisibilityTimeout           *int     `json:"VisibilityTimeout"`
	WaitTimeSeconds             int      `json:"WaitTimeSeconds"`
	MessageAttributeNames       []string `json:"MessageAttributeNames"`
	AttributeNames              []string `json:"AttributeNames"`
	MessageSystemAttributeNames []string `json:"MessageSystemAttributeNames"`
}

type sqsWireMessage struct {
	MessageID              string                      `json:"MessageId"`
	ReceiptHandle          string                      `json:"ReceiptHandle"`
	MD5OfBody              string                      `json:"MD5OfBody"`
	Body                   string                      `json:"Body"`
	Attributes             map[string]string           `json:"Attributes,omitempty"`
	MessageAttributes      map[string]MessageAttribute `json:"MessageAttributes,omitempty"`
	MD5OfMessageAttributes string                      `json:"MD5OfMessageAttributes,omitempty"`
}

// wants reports whether name is selected by an attribute-name list ("All",
// ".*", exact names, or "prefix.*").
func wants(list []string, name string) bool {
	for _, w := range list {
		if w == "All" || w == ".*" || w == name || (strings.HasSuffix(w, ".*") && strings.HasPrefix(name, strings.TrimSuffix(w, "*"))) {
			return true
		}
	}
	return false
}

func (q *SQS) receiveMessage(r *request) (any, *apiError) {
	var in sqsReceiveInput
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	max := 1
	if in.MaxNumberOfMessages != nil {
		max = *in.MaxNumberOfMessages
	}
	if max < 1 || max > 10 {
		return nil, sqsInvalid("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", max)
	}
	vis := q.visibilityOf(in.QueueURL)
	if in.VisibilityTimeout != nil {
		vis = *in.VisibilityTimeout
	}
	if vis < 0 || vis > 43200 {
		return nil, sqsInvalid("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided.", vis)
	}
	if in.WaitTimeSeconds < 0 || in.WaitTimeSeconds > 20 {
		return nil, sqsInvalid("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", in.WaitTimeSeconds)
	}
	sysNames := append(slices.Clone(in.AttributeNames), in.MessageSystemAttributeNames...)

	deadline := time.NewTimer(time.Duration(in.WaitTimeSeconds) * time.Second)
	defer deadline.Stop()
	polling := false
	defer func() {
		if polling {
			q.setPolling(in.QueueURL, -1)
		}
	}()
	for {
		q.f.mu.Lock()
		ch := q.f.changed
		q.f.mu.Unlock()
		msgs, aerr := q.take(in.QueueURL, max, vis, in.MessageAttributeNames, sysNames)
		if aerr != nil {
			return nil, aerr
		}
		if len(msgs) > 0 || in.WaitTimeSeconds == 0 {
			return map[string]any{"Messages": msgs}, nil
		}
		// Long polling: wait for the next change to the fake (a send), or
		// for the next delayed or hidden message to become visible,
		// rather than poll.
		if !polling {
			polling = true
			q.setPolling(in.QueueURL, +1)
			continue // re-check: the change channel was replaced
		}
		visible := time.NewTimer(time.Hour)
		if next, now := q.nextVisible(in.QueueURL); !next.IsZero() {
			visible.Reset(next.Sub(now))
		}
		select {
		case <-ch:
		case <-visible.C:
		case <-deadline.C:
			visible.Stop()
			return map[string]any{"Messages": []sqsWireMessage{}}, nil
		case <-r.ctx.Done():
			visible.Stop()
			return nil, &apiError{status: 500, code: "InternalFailure", msg: "request cancelled"}
		}
		visible.Stop()
	}
}

// nextVisible returns when the queue's next hidden or delayed message
// becomes visible (zero when none), and the fake's now.
func (q *SQS) nextVisible(queueURL string) (next, now time.Time) {
	q.f.mu.Lock()
	defer q.f.mu.Unlock()
	now = q.f.now()
	if qu, aerr := q.queueByURLLocked(queueURL); aerr == nil {
		next = nextVisibleLocked(qu, now)
	}
	return next, now
}

// setPolling adjusts the long-poller count of a queue and wakes waiters.
func (q *SQS) setPolling(queueURL string, delta int) {
	q.f.update(func() {
		if qu, aerr := q.queueByURLLocked(queueURL); aerr == nil {
			qu.pollers += delta
		}
	})
}

// Polling returns how many ReceiveMessage calls are long-polling queue name
// right now, so a test can send only once a receiver is waiting.
func (q *SQS) Polling(name string) int {
	q.f.mu.Lock()
	defer q.f.mu.Unlock()
	if qu, ok := q.queues[name]; ok {
		return qu.pollers
	}
	return 0
}

// take marks up to max visible messages in flight and returns them.
func (q *SQS) take(queueURL string, max, vis int, attrNames, sysNames []string) ([]sqsWireMessage, *apiError) {
	q.f.mu.Lock()
	defer q.f.mu.Unlock()
	qu, aerr := q.queueByURLLocked(queueURL)
	if aerr != nil {
		return nil, aerr
	}
	now := q.f.now()
	out := []sqsWireMessage{}
	for _, m := range q.receivableLocked(qu, max, now) {
		m.ReceiveCount++
		m.VisibleAt = now.Add(time.Duration(vis) * time.Second)
		q.seq++
		m.receiptHandle = base64.RawURLEncoding.EncodeToString([]byte(qu.name + "\x00" + m.ID + "\x00" + strconv.Itoa(q.seq)))
		w := sqsWireMessage{MessageID: m.ID, ReceiptHandle: m.receiptHandle, MD5OfBody: md5Hex(m.Body), Body: m.Body}
		sel := map[string]MessageAttribute{}
		for k, a := range m.Attributes {
			if wants(attrNames, k) {
				sel[k] = a
			}
		}
		if len(sel) > 0 {
			w.MessageAttributes = sel
			w.MD5OfMessageAttributes = attributesMD5(sel)
		}
		sys := map[string]string{
			"ApproximateReceiveCount": strconv.Itoa(m.ReceiveCount),
			"SentTimestamp":           strconv.FormatInt(m.Sent.UnixMilli(), 10),
			"SenderId":                "AROAFAKETOKKEN",
		}
		for k, v := range sys {
			if wants(sysNames, k) {
				if w.Attributes == nil {
					w.Attributes = map[string]string{}
				}
				w.Attributes[k] = v
			}
		}
		out = append(out, w)
	}
	return out, nil
}

func (q *SQS) deleteMessage(r *request) (any, *apiError) {
	var in struct {
		QueueURL      string `json:"QueueUrl"`
		ReceiptHandle string `json:"ReceiptHandle"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	raw, err := base64.RawURLEncoding.DecodeString(in.ReceiptHandle)
	parts := strings.Split(string(raw), "\x00")
	if err != nil || len(parts) != 3 {
		return nil, &apiError{status: 404, code: "ReceiptHandleIsInvalid", msg: fmt.Sprintf("The input receipt handle \"%s\" is not a valid receipt handle.", in.ReceiptHandle), sender: true}
	}
	var aerr *apiError
	q.f.update(func() {
		var qu *queue
		if qu, aerr = q.queueByURLLocked(in.QueueURL); aerr != nil {
			return
		}
		if parts[0] != qu.name {
			aerr = &apiError{status: 404, code: "ReceiptHandleIsInvalid", msg: "The receipt handle is not for this queue.", sender: true}
			return
		}
		// Deleting an already-deleted message succeeds, like SQS.
		qu.messages = slices.DeleteFunc(qu.messages, func(m *Message) bool { return m.ID == parts[1] })
	})
	if aerr != nil {
		return nil, aerr
	}
	return struct{}{}, nil
}

func (q *SQS) getQueueURL(r *request) (any, *apiError) {
	var in struct {
		QueueName string `json:"QueueName"`
		Owner     string `json:"QueueOwnerAWSAccountId"`
	}
	if aerr := decodeJSON(r, &in); aerr != nil {
		return nil, aerr
	}
	q.f.mu.Lock()
	defer q.f.mu.Unlock()
	qu, ok := q.queues[in.QueueName]
	if !ok || (in.Owner != "" && in.Owner != AccountID) {
		return nil, &apiError{status: 400, code: "QueueDoesNotExist", queryCode: "AWS.SimpleQueueService.NonExistentQueue",
			msg: "The specified queue does not exist.", sender: true}
	}
	return map[string]string{"QueueUrl": qu.url}, nil
}
