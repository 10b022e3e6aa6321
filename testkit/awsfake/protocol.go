package awsfake

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// maxRequestBody bounds what the fake reads from one request; SQS batches
// (up to 1 MiB) are the largest legitimate bodies.
const maxRequestBody = 2 << 20

// request is one decoded API call as a service handler sees it.
type request struct {
	ctx     context.Context
	service string
	op      string
	caller  *principal
	now     time.Time
	form    url.Values // query protocols (STS, EC2)
	body    []byte     // JSON protocols
	method  string     // REST-JSON (Scheduler)
	path    string
	query   url.Values
	target  string // X-Amz-Target (JSON protocols)
}

// apiError is an AWS error response. Its wire shape depends on the protocol.
type apiError struct {
	status int
	code   string
	msg    string
	// sender marks client faults (query protocol's <Type>, SQS's
	// x-amzn-query-error suffix).
	sender bool
	// queryCode is SQS's legacy query error code, sent in the
	// x-amzn-query-error header; code is used when empty.
	queryCode string
	// fields are further members of a JSON error body (Identity Store's
	// ResourceType, Reason, ...); a "Message" field replaces "message".
	fields map[string]string
}

// clientErr returns a 400 client error.
func clientErr(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, msg: fmt.Sprintf(format, args...), sender: true}
}

// protocol names the wire format of a service.
type protocol int

const (
	protoQuery    protocol = iota + 1 // awsQuery, XML responses (STS)
	protoEC2                          // ec2Query, XML responses (EC2)
	protoJSON10                       // awsJson1_0 (SQS)
	protoJSON11                       // awsJson1_1 (SSM, Secrets Manager)
	protoRESTJSON                     // restJson1 (Scheduler)
)

// handlerFunc serves one operation: it returns the response value (an XML
// document struct for the query protocols, a JSON-encodable value otherwise)
// or an error.
type handlerFunc func(r *request) (any, *apiError)

// service describes how one faked service speaks.
type service struct {
	proto   protocol
	target  string // X-Amz-Target prefix for JSON protocols
	xmlns   string // namespace for XML responses
	ops     map[string]handlerFunc
	restOp  func(method, path string) string // REST-JSON routing
	faultOf func(Fault) *apiError
}

// services builds the routing table; New calls it once.
func (f *Fake) services() map[string]*service {
	return map[string]*service{
		STSService: {
			proto: protoQuery, xmlns: "https://sts.amazonaws.com/doc/2011-06-15/",
			ops: map[string]handlerFunc{
				"AssumeRole":        f.sts.assumeRole,
				"GetCallerIdentity": f.sts.getCallerIdentity,
			},
			faultOf: func(ft Fault) *apiError {
				if ft == Throttle {
					return &apiError{status: 400, code: "Throttling", msg: "Rate exceeded", sender: true}
				}
				return &apiError{status: 500, code: "InternalFailure", msg: "An internal error occurred."}
			},
		},
		EC2Service: {
			proto: protoEC2, xmlns: "http://ec2.amazonaws.com/doc/2016-11-15/",
			ops: map[string]handlerFunc{
				"DescribeInstances": f.ec2.describeInstances,
				"CreateTags":        f.ec2.createTags,
				"DeleteTags":        f.ec2.deleteTags,
				"RebootInstances":   f.ec2.rebootInstances,
			},
			faultOf: func(ft Fault) *apiError {
				if ft == Throttle {
					return &apiError{status: 503, code: "RequestLimitExceeded", msg: "Request limit exceeded."}
				}
				return &apiError{status: 500, code: "InternalError", msg: "An internal error has occurred."}
			},
		},
		SSMService: {
			proto: protoJSON11, target: "AmazonSSM",
			ops: map[string]handlerFunc{
				"StartSession":     f.ssm.startSession,
				"DescribeSessions": f.ssm.describeSessions,
				"TerminateSession": f.ssm.terminateSession,
				"ResumeSession":    f.ssm.resumeSession,
			},
			faultOf: func(ft Fault) *apiError {
				if ft == Throttle {
					return &apiError{status: 400, code: "ThrottlingException", msg: "Rate exceeded", sender: true}
				}
				return &apiError{status: 500, code: "InternalServerError", msg: "An error occurred on the server side."}
			},
		},
		SchedulerService: {
			proto: protoRESTJSON,
			ops: map[string]handlerFunc{
				"CreateSchedule": f.sched.createSchedule,
				"UpdateSchedule": f.sched.updateSchedule,
				"GetSchedule":    f.sched.getSchedule,
				"DeleteSchedule": f.sched.deleteSchedule,
				"ListSchedules":  f.sched.listSchedules,
			},
			restOp: schedulerOp,
			faultOf: func(ft Fault) *apiError {
				if ft == Throttle {
					return &apiError{status: 429, code: "ThrottlingException", msg: "Rate exceeded", sender: true}
				}
				return &apiError{status: 500, code: "InternalServerException", msg: "Unexpected error occurred while processing the request."}
			},
		},
		SQSService: {
			proto: protoJSON10, target: "AmazonSQS",
			ops: map[string]handlerFunc{
				"SendMessage":      f.sqs.sendMessage,
				"SendMessageBatch": f.sqs.sendMessageBatch,
				"ReceiveMessage":   f.sqs.receiveMessage,
				"DeleteMessage":    f.sqs.deleteMessage,
				"GetQueueUrl":      f.sqs.getQueueURL,
			},
			faultOf: func(ft Fault) *apiError {
				if ft == Throttle {
					return &apiError{status: 400, code: "RequestThrottled", msg: "Request is throttled.", sender: true}
				}
				return &apiError{status: 500, code: "InternalFailure", msg: "The request processing has failed because of an unknown error, exception or failure."}
			},
		},
		SecretsManagerService: {
			proto: protoJSON11, target: "secretsmanager",
			ops: map[string]handlerFunc{
				"GetSecretValue": f.secrets.getSecretValue,
			},
			faultOf: func(ft Fault) *apiError {
				if ft == Throttle {
					return &apiError{status: 400, code: "ThrottlingException", msg: "Rate exceeded", sender: true}
				}
				return &apiError{status: 500, code: "InternalServiceError", msg: "An error occurred on the server side."}
			},
		},
	}
}

// scopePattern extracts access key and service from a SigV4 Authorization
// header: "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/sts/aws4_request, ...".
var scopePattern = regexp.MustCompile(`Credential=([^/,\s]+)/\d{8}/[^/]+/([^/]+)/aws4_request`)

func (f *Fake) serveHTTP(w http.ResponseWriter, hr *http.Request) {
	m := scopePattern.FindStringSubmatch(hr.Header.Get("Authorization"))
	if m == nil {
		http.Error(w, "awsfake: request is not SigV4-signed (no credential scope in Authorization)", http.StatusForbidden)
		return
	}
	akid, svcName := m[1], m[2]
	svc, ok := f.svcs[svcName]
	if !ok {
		http.Error(w, "awsfake: service "+svcName+" is not faked", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(hr.Body, maxRequestBody))
	if err != nil {
		http.Error(w, "awsfake: read body: "+err.Error(), http.StatusBadRequest)
		return
	}

	f.mu.Lock()
	now := f.now()
	caller := f.principals[akid]
	f.mu.Unlock()

	r := &request{ctx: hr.Context(), service: svcName, caller: caller, now: now, body: body,
		method: hr.Method, path: hr.URL.EscapedPath(), query: hr.URL.Query(),
		target: hr.Header.Get("X-Amz-Target")}
	call := Call{Service: svcName, At: now}
	if caller != nil {
		call.Caller = caller.arn
	}

	out, aerr := f.dispatch(svc, r, &call)
	if aerr != nil {
		call.ErrorCode = aerr.code
	}
	f.record(call)
	writeResponse(w, svc, r.op, out, aerr)
}

// dispatch decodes the operation and its parameters, applies authentication,
// injected latency and faults, and runs the handler.
func (f *Fake) dispatch(svc *service, r *request, call *Call) (any, *apiError) {
	switch svc.proto {
	case protoQuery, protoEC2:
		form, err := url.ParseQuery(string(r.body))
		if err != nil {
			return nil, clientErr("MalformedQueryString", "%v", err)
		}
		r.form, r.op = form, form.Get("Action")
		params := map[string]any{}
		for k, v := range form {
			params[k] = v[0]
		}
		call.Params = params
	case protoJSON10, protoJSON11:
		target := ""
		if t := strings.SplitN(r.target, ".", 2); len(t) == 2 && t[0] == svc.target {
			target = t[1]
		}
		r.op = target
		params := map[string]any{}
		if len(r.body) > 0 {
			if err := json.Unmarshal(r.body, &params); err != nil {
				call.Operation = r.op
				return nil, clientErr("SerializationException", "request body is not a JSON object: %v", err)
			}
		}
		call.Params = params
	case protoRESTJSON:
		r.op = svc.restOp(r.method, r.path)
		params := map[string]any{}
		if len(r.body) > 0 {
			if err := json.Unmarshal(r.body, &params); err != nil {
				call.Operation = r.op
				return nil, clientErr("ValidationException", "request body is not a JSON object: %v", err)
			}
		}
		if name := restName(r.path); name != "" {
			params["Name"] = name
		}
		for k, v := range r.query {
			params[k] = v[0]
		}
		call.Params = params
	}
	call.Operation = r.op

	h, ok := svc.ops[r.op]
	if !ok {
		code := "InvalidAction" // query protocols
		if svc.proto != protoQuery && svc.proto != protoEC2 {
			code = "UnknownOperationException"
		}
		return nil, &apiError{status: 400, code: code, msg: fmt.Sprintf("awsfake: operation %q of %s is not faked", r.op, r.service), sender: true}
	}
	if aerr := authenticate(svc.proto, r); aerr != nil {
		return nil, aerr
	}
	fault, delay := f.takeFault(opKey{r.service, r.op})
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
		}
	}
	if fault != 0 && fault != LostResponse {
		return nil, svc.faultOf(fault)
	}
	out, aerr := h(r)
	if hold := f.responseLatency(opKey{r.service, r.op}); hold > 0 {
		f.update(func() {}) // the call took effect: wake WaitFor before the held answer
		t := time.NewTimer(hold)
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
		}
	}
	if fault == LostResponse {
		return nil, svc.faultOf(Internal)
	}
	return out, aerr
}

// authenticate rejects unknown and expired access keys the way each
// protocol family does.
func authenticate(p protocol, r *request) *apiError {
	jsonProto := p == protoJSON10 || p == protoJSON11 || p == protoRESTJSON
	if r.caller == nil {
		if jsonProto {
			return &apiError{status: 400, code: "UnrecognizedClientException", msg: "The security token included in the request is invalid.", sender: true}
		}
		if p == protoEC2 {
			return &apiError{status: 401, code: "AuthFailure", msg: "AWS was not able to validate the provided access credentials"}
		}
		return &apiError{status: 403, code: "InvalidClientTokenId", msg: "The security token included in the request is invalid.", sender: true}
	}
	if !r.caller.expires.IsZero() && !r.now.Before(r.caller.expires) {
		if jsonProto {
			return &apiError{status: 400, code: "ExpiredTokenException", msg: "The security token included in the request is expired", sender: true}
		}
		return &apiError{status: 400, code: "ExpiredToken", msg: "The security token included in the request is expired", sender: true}
	}
	return nil
}

// xmlMeta is filled in by writeResponse on XML documents that embed it.
type xmlMeta interface{ setMeta(xmlns, requestID string) }

// stsMeta is embedded in STS response documents.
type stsMeta struct {
	Xmlns     string `xml:"xmlns,attr"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

func (m *stsMeta) setMeta(xmlns, id string) { m.Xmlns, m.RequestID = xmlns, id }

// ec2Meta is embedded in EC2 response documents.
type ec2Meta struct {
	Xmlns     string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
}

func (m *ec2Meta) setMeta(xmlns, id string) { m.Xmlns, m.RequestID = xmlns, id }

// writeResponse encodes out or aerr in svc's wire format.
func writeResponse(w http.ResponseWriter, svc *service, op string, out any, aerr *apiError) {
	reqID := requestID()
	h := w.Header()
	h.Set("X-Amzn-RequestId", reqID)
	switch svc.proto {
	case protoQuery, protoEC2:
		h.Set("Content-Type", "text/xml")
		var doc any
		status := http.StatusOK
		if aerr != nil {
			status = aerr.status
			if svc.proto == protoEC2 {
				doc = ec2ErrorDoc{Code: aerr.code, Message: aerr.msg, RequestID: reqID}
			} else {
				typ := "Receiver"
				if aerr.sender {
					typ = "Sender"
				}
				doc = queryErrorDoc{Xmlns: svc.xmlns, Type: typ, Code: aerr.code, Message: aerr.msg, RequestID: reqID}
			}
		} else {
			if m, ok := out.(xmlMeta); ok {
				m.setMeta(svc.xmlns, reqID)
			}
			doc = out
		}
		var buf bytes.Buffer
		buf.WriteString(xml.Header)
		if err := xml.NewEncoder(&buf).Encode(doc); err != nil {
			http.Error(w, "awsfake: encode "+op+" response: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write(buf.Bytes())
	default:
		ct := "application/json"
		switch svc.proto {
		case protoJSON10:
			ct = "application/x-amz-json-1.0"
		case protoJSON11:
			ct = "application/x-amz-json-1.1"
		}
		h.Set("Content-Type", ct)
		if aerr != nil {
			body := map[string]string{"__type": aerr.code, "message": aerr.msg}
			for k, v := range aerr.fields {
				if k == "Message" {
					delete(body, "message")
				}
				body[k] = v
			}
			if svc.proto == protoRESTJSON {
				h.Set("X-Amzn-ErrorType", aerr.code)
				body = map[string]string{"Message": aerr.msg}
			}
			if svc.proto == protoJSON10 { // SQS is query-compatible
				body["__type"] = "com.amazonaws.sqs#" + aerr.code
				qc := aerr.queryCode
				if qc == "" {
					qc = aerr.code
				}
				fault := "Receiver"
				if aerr.sender {
					fault = "Sender"
				}
				h.Set("X-Amzn-Query-Error", qc+";"+fault)
			}
			w.WriteHeader(aerr.status)
			_ = json.NewEncoder(w).Encode(body)
			return
		}
		if out == nil {
			out = struct{}{}
		}
		b, err := json.Marshal(out)
		if err != nil {
			http.Error(w, "awsfake: encode "+op+" response: "+err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(b)
	}
}

// queryErrorDoc is the AWS query protocol's error document.
type queryErrorDoc struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

// ec2ErrorDoc is the EC2 query protocol's error document.
type ec2ErrorDoc struct {
	XMLName   xml.Name `xml:"Response"`
	Code      string   `xml:"Errors>Error>Code"`
	Message   string   `xml:"Errors>Error>Message"`
	RequestID string   `xml:"RequestID"`
}

// epoch encodes t as the JSON protocols' default timestamp format: seconds
// since the Unix epoch, with millisecond precision.
func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// decodeJSON unmarshals a JSON request body into v, mapping failure to the
// protocol's serialization error.
func decodeJSON(r *request, v any) *apiError {
	if len(r.body) == 0 {
		return nil
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		code := "SerializationException"
		if r.service == SchedulerService {
			code = "ValidationException"
		}
		return clientErr(code, "cannot decode %s request: %v", r.op, err)
	}
	return nil
}

// queryList collects the members prefix.1+suffix, prefix.2+suffix, ... of a
// query-protocol list ("PolicyArns.member", ".arn"), stopping at the first
// gap.
func queryList(form url.Values, prefix, suffix string) []string {
	var out []string
	for i := 1; ; i++ {
		k := fmt.Sprintf("%s.%d%s", prefix, i, suffix)
		if _, ok := form[k]; !ok {
			return out
		}
		out = append(out, form.Get(k))
	}
}
