package alertui

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tokken/tokken/bot/alert"
	"github.com/tokken/tokken/handlers/lambdaevent"
)

// Ingester stores an event durably and queues its processing
// (alert.Service.Ingest).
type Ingester interface {
	Ingest(ctx context.Context, via, id string, ev alert.Event) (string, error)
}

// Webhook is the Mackerel webhook handler. Mackerel does not sign its
// webhooks; it sends the credentials of the webhook URL
// (https://user:password@host/webhooks/mackerel) as HTTP Basic auth.
type Webhook struct {
	user, password [sha256.Size]byte
	in             Ingester
	log            *slog.Logger
}

// NewWebhook returns the handler accepting user and password. Both must be
// non-empty: an unauthenticated alert endpoint is never served.
func NewWebhook(user, password string, in Ingester, log *slog.Logger) (*Webhook, error) {
	if user == "" || password == "" || in == nil {
		return nil, errors.New("alertui: the Mackerel webhook needs a user, a password and an ingester")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Webhook{user: sha256.Sum256([]byte(user)), password: sha256.Sum256([]byte(password)), in: in, log: log}, nil
}

// authorized compares the request's credentials in constant time (both
// fields always compared; hashing first hides their lengths).
func (h *Webhook) authorized(r *http.Request) (ok bool, reason string) {
	user, pass, present := r.BasicAuth()
	if !present {
		return false, "missing Basic auth credentials (put them in the webhook URL: https://user:password@host/webhooks/mackerel)"
	}
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(pass))
	if subtle.ConstantTimeCompare(u[:], h.user[:])&subtle.ConstantTimeCompare(p[:], h.password[:]) != 1 {
		return false, "wrong webhook credentials"
	}
	return true, ""
}

// ServeHTTP authenticates, reads and parses the delivery, stores it, and
// answers 202 with the delivery id. Bad credentials are 401, bodies over
// MaxBody 413, unparseable payloads 400 with the reason; only a
// store or queue failure is 5xx (Mackerel then retries).
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	if ok, reason := h.authorized(r); !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="tokken mackerel webhook", charset="UTF-8"`)
		h.log.WarnContext(r.Context(), "mackerel webhook refused", "reason", reason, "remote", r.RemoteAddr)
		http.Error(w, reason, http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "body exceeds 1 MiB", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	ev, err := ParseMackerel(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id, err := h.in.Ingest(r.Context(), "mackerel", "", ev)
	if err != nil {
		h.log.ErrorContext(r.Context(), "mackerel webhook not stored", "err", err)
		http.Error(w, "could not store the delivery; please retry", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"delivery": id, "key": ev.Key()})
}

// SNS returns the handler of SNS notifications: CloudWatch alarms become
// alerts, anything else a plain notice. A message that cannot be parsed is
// stored as a notice saying so (never dropped, never retried forever). The
// SNS message id makes redeliveries collapse.
func SNS(in Ingester, log *slog.Logger) lambdaevent.SNSHandler {
	return func(ctx context.Context, msg events.SNSEntity) error {
		evs, err := ParseCloudWatchSNS(events.SNSEvent{Records: []events.SNSEventRecord{{EventSource: "aws:sns", SNS: msg}}})
		if err != nil {
			log.WarnContext(ctx, "unreadable SNS message stored as a notice", "message_id", msg.MessageID, "err", err)
			raw, _ := json.Marshal(msg) // SNSEntity always marshals
			n := alert.Notice{
				Source: alert.SourceCloudWatch, Kind: alert.KindUnknown, Type: "sns",
				Key: "cloudwatch:sns-unreadable:" + msg.MessageID, Title: "Unreadable SNS message: " + err.Error(),
				Message: msg.Message, Raw: raw,
			}
			evs = []alert.Event{{Kind: n.Kind, Notice: &n}}
		}
		for i, ev := range evs {
			id := msg.MessageID
			if id != "" && len(evs) > 1 {
				id += "-" + strconv.Itoa(i)
			}
			if _, err := in.Ingest(ctx, "sns", id, ev); err != nil {
				return err
			}
		}
		return nil
	}
}

// EventBridge returns the handler of CloudWatch "Alarm State Change"
// events (register it for source "aws.cloudwatch" and
// DetailTypeAlarmStateChange). The event id makes redeliveries
// collapse.
func EventBridge(in Ingester, log *slog.Logger) lambdaevent.EventBridgeHandler {
	return func(ctx context.Context, ev events.EventBridgeEvent) error {
		raw, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		parsed, err := ParseCloudWatchEventBridge(raw)
		if err != nil {
			log.WarnContext(ctx, "unreadable EventBridge alarm stored as a notice", "id", ev.ID, "err", err)
			n := alert.Notice{
				Source: alert.SourceCloudWatch, Kind: alert.KindUnknown, Type: ev.DetailType,
				Key: "cloudwatch:event-unreadable:" + ev.ID, Title: "Unreadable EventBridge alarm: " + err.Error(), Raw: raw,
			}
			parsed = alert.Event{Kind: n.Kind, Notice: &n}
		}
		_, err = in.Ingest(ctx, "eventbridge", ev.ID, parsed)
		return err
	}
}
