// Package lambdart is a fake AWS Lambda Runtime API served on loopback, for
// running tokken as Lambda runs it without AWS (the e2e tests of the
// worker, the cold-start benchmark): start tokken with
// AWS_LAMBDA_RUNTIME_API pointing at a Server, and the time of its first
// GET …/invocation/next is when the function was ready to work (Lambda's
// "init" phase is over). Invoke then hands it an event and waits for the
// answer, as Lambda would.
//
// It implements the Runtime API a custom runtime uses (version
// 2018-06-01): GET /runtime/invocation/next (long poll, with the
// Lambda-Runtime-* headers aws-lambda-go reads), POST
// /runtime/invocation/{id}/response, POST /runtime/invocation/{id}/error,
// and POST /runtime/init/error. Unknown or repeated request ids are
// refused with 400, as Lambda does.
package lambdart

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// APIVersion is the Runtime API version prefix.
const APIVersion = "2018-06-01"

// FunctionARN is the ARN the fake reports for the invoked function.
const FunctionARN = "arn:aws:lambda:us-east-1:123456789012:function:tokken-bench"

// maxBody bounds response and error bodies (Lambda's synchronous payload
// limit is 6 MB).
const maxBody = 6 << 20

// Result is how an invocation ended.
type Result struct {
	RequestID string
	// Error is true when the function reported an error (…/error); then
	// ErrorType holds the Lambda-Runtime-Function-Error-Type header.
	Error     bool
	ErrorType string
	// Body is the response payload, or the error document.
	Body []byte
	// Done is when the fake received the answer.
	Done time.Time
}

// InitError is what a runtime reported through POST /runtime/init/error.
type InitError struct {
	ErrorType string
	Body      []byte
}

type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	done     chan Result // buffered, 1
}

// Server is the fake Runtime API. Create it with New and serve it with
// an http.Server; it is safe for concurrent use.
type Server struct {
	mux   *http.ServeMux
	queue chan *invocation

	mu        sync.Mutex
	firstPoll time.Time
	polled    chan struct{} // closed at the first poll
	initErr   chan InitError
	pending   map[string]*invocation // handed out, not answered
	nextID    int
}

// New returns a Server with no queued invocations.
func New() *Server {
	s := &Server{
		mux:     http.NewServeMux(),
		queue:   make(chan *invocation, 16),
		polled:  make(chan struct{}),
		initErr: make(chan InitError, 1),
		pending: map[string]*invocation{},
	}
	prefix := "/" + APIVersion + "/runtime/"
	s.mux.HandleFunc("GET "+prefix+"invocation/next", s.next)
	s.mux.HandleFunc("POST "+prefix+"invocation/{id}/response", s.answer(false))
	s.mux.HandleFunc("POST "+prefix+"invocation/{id}/error", s.answer(true))
	s.mux.HandleFunc("POST "+prefix+"init/error", s.initError)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// FirstPoll is closed when the runtime first asks for an invocation.
func (s *Server) FirstPoll() <-chan struct{} { return s.polled }

// FirstPollAt is when the first poll arrived (zero before it).
func (s *Server) FirstPollAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstPoll
}

// InitErrors receives the first init error a runtime reports.
func (s *Server) InitErrors() <-chan InitError { return s.initErr }

// Invoke queues payload as the next invocation with the given timeout
// (its deadline header) and waits until the function answers or ctx ends.
func (s *Server) Invoke(ctx context.Context, payload []byte, timeout time.Duration) (Result, error) {
	s.mu.Lock()
	s.nextID++
	inv := &invocation{
		id:       fmt.Sprintf("bench-%08d-0000-4000-8000-000000000000", s.nextID),
		payload:  payload,
		deadline: time.Now().Add(timeout),
		done:     make(chan Result, 1),
	}
	s.mu.Unlock()
	select {
	case s.queue <- inv:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("queue invocation: %w", ctx.Err())
	}
	select {
	case res := <-inv.done:
		return res, nil
	case <-ctx.Done():
		return Result{}, fmt.Errorf("invocation %s: %w", inv.id, ctx.Err())
	}
}

func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.firstPoll.IsZero() {
		s.firstPoll = time.Now()
		close(s.polled)
	}
	s.mu.Unlock()
	select {
	case inv := <-s.queue:
		s.mu.Lock()
		s.pending[inv.id] = inv
		s.mu.Unlock()
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", FunctionARN)
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(inv.payload)
	case <-r.Context().Done():
		// The runtime went away (the process ended); nothing to hand out.
	}
}

func (s *Server) answer(isError bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			apiError(w, http.StatusBadRequest, "InvalidRequest", "cannot read body: "+err.Error())
			return
		}
		if len(body) > maxBody {
			apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "payload larger than 6 MB")
			return
		}
		id := r.PathValue("id")
		s.mu.Lock()
		inv, ok := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if !ok {
			apiError(w, http.StatusBadRequest, "InvalidRequestID", "unknown or already answered request id "+strconv.Quote(id))
			return
		}
		res := Result{RequestID: id, Error: isError, Body: body, Done: time.Now()}
		if isError {
			res.ErrorType = errorType(r.Header, body)
		}
		inv.done <- res
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"OK"}`)
	}
}

func (s *Server) initError(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequest", "cannot read body: "+err.Error())
		return
	}
	select {
	case s.initErr <- InitError{ErrorType: errorType(r.Header, body), Body: body}:
	default: // only the first is kept
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

// errorType is the Lambda-Runtime-Function-Error-Type header, or else the
// errorType member of the error document (aws-lambda-go sends only that).
func errorType(h http.Header, body []byte) string {
	if t := h.Get("Lambda-Runtime-Function-Error-Type"); t != "" {
		return t
	}
	var doc struct {
		ErrorType string `json:"errorType"`
	}
	_ = json.Unmarshal(body, &doc)
	return doc.ErrorType
}

// apiError answers like the Runtime API: a JSON errorType/errorMessage.
func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"errorType": typ, "errorMessage": msg})
}
