package access

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokken/tokken/bot"
)

// KindHeld holds Held records by request id. Only the worker writes them:
// template.yaml denies the ingress role every write to this partition.
const KindHeld = "access.held"

// ActHeldEnded is the audit action of access ended from its Held record
// after the request's own path did not end it (see Sweep).
const ActHeldEnded = "access.held_ended"

// Held is the worker's own record of access it granted and has not yet
// ended: what to end (the grant, and for identity-center access the
// assignment or membership with whether it existed before tokken granted
// it) and when (Grant.Window.ExpiresAt, the window end activation fixed,
// moved only by extensions the worker applied).
//
// The request item cannot be trusted for this: the ingress may write any
// item, so a compromised ingress could mark tokken's own assignment as one
// that existed before, name another principal, move the window, or mark
// the request ended. Activation writes Held before it grants anything;
// ending (Finish) removes what Held names and then deletes it; the sweep
// ends any Held whose window has passed that the request's own path did
// not end (endOverdue).
type Held struct {
	Grant Grant     `json:"grant"`
	IDC   *IDCGrant `json:"idc,omitempty"`
}

// ends is when the access Held names must have ended.
func (h Held) ends() time.Time { return h.Grant.Window.ExpiresAt }

// request is the least Request that names h in an alert or audit row, for
// when the request item is gone or cannot be trusted.
func (h Held) request() Request {
	return Request{ID: h.Grant.RequestID, Requester: h.Grant.Requester, Profile: h.Grant.Profile, Kind: h.Grant.Kind, Window: h.Grant.Window, IDC: h.IDC}
}

// holding reads the Held record of request id; found is false when there
// is none (nothing was granted, it has ended, or the grant predates Held
// records and ends from its request as before).
func (s *Service) holding(ctx context.Context, id string) (h Held, found bool, err error) {
	v, err := s.helds.Get(ctx, id)
	if errors.Is(err, bot.ErrNotFound) {
		return Held{}, false, nil
	}
	if err != nil {
		return Held{}, false, fmt.Errorf("read what %s holds: %w", id, err)
	}
	return v.Value, true, nil
}

// recordHeld records h before anything it names is granted, replacing an earlier
// attempt's record.
func (s *Service) recordHeld(ctx context.Context, h Held) error {
	if _, err := s.helds.Upsert(ctx, h.Grant.RequestID, 0, func(v *Held, _ bool) error { *v = h; return nil }); err != nil {
		return fmt.Errorf("record what %s holds: %w", h.Grant.RequestID, err)
	}
	return nil
}

// extendHeld moves the window end of request id's Held record to end
// before an extension is granted. A grant without a record (granted before
// Held records existed) ends from its request as before.
func (s *Service) extendHeld(ctx context.Context, id string, end time.Time) error {
	_, err := s.helds.Update(ctx, id, func(h *Held) error {
		if h.Grant.Window.ExpiresAt.Before(end) {
			h.Grant.Window.ExpiresAt = end
		}
		return nil
	})
	if err != nil && !errors.Is(err, bot.ErrNotFound) {
		return fmt.Errorf("record the extended window of %s: %w", id, err)
	}
	return nil
}

// dropHeld deletes request id's Held record once its access has ended. A
// failure is logged: the sweep finds the record and ends it again (ending
// is idempotent).
func (s *Service) dropHeld(ctx context.Context, id string) {
	if err := s.helds.Store.Delete(ctx, KindHeld, id, 0); err != nil && !errors.Is(err, bot.ErrNotFound) {
		s.log.WarnContext(ctx, "access: dropping the held record failed; the sweep will", "request", id, "err", err)
	}
}

// endHeld ends the access h names: the identity-center assignment or
// membership tokken made, or every live SSM session of the grant. It
// revokes no credentials: it runs after the window end, when the
// credentials' own session policy already denies everything.
func (s *Service) endHeld(ctx context.Context, h Held) (sessions []Session, removed bool, err error) {
	if h.Grant.Kind == KindIdentityCenter {
		removed, err = s.endIDC(ctx, h.IDC)
		return nil, removed, err
	}
	sessions, err = s.granter.TerminateSessions(ctx, h.Grant)
	if err != nil {
		return nil, false, fmt.Errorf("terminate sessions: %w", err)
	}
	return sessions, false, nil
}

// endOverdue ends the access of a Held record whose window has passed. The
// request's own path goes first (Expire: it ends the access, records it on
// the request and drops the record). If the record is still there, the
// request item did not end it — it claims the request ended, or is not yet
// over, or is gone — and tokken ends the access from the record itself,
// tells ops when that removed anything, and drops it.
func (s *Service) endOverdue(ctx context.Context, id string, h Held) error {
	if err := s.Expire(ctx, id); err != nil {
		s.log.WarnContext(ctx, "access: expiring an overdue grant through its request failed; ending it from the held record", "request", id, "err", err)
	}
	if _, found, err := s.holding(ctx, id); err != nil || !found {
		return err
	}
	sessions, removed, err := s.endHeld(ctx, h)
	if err != nil {
		return fmt.Errorf("end %s from its held record: %w", id, err)
	}
	if removed || len(sessions) > 0 {
		r := h.request()
		what := fmt.Sprintf("%d SSM session(s) terminated", len(sessions))
		if removed {
			what = h.IDC.Describe() + " removed"
		}
		note := fmt.Sprintf("the window ended at %s but the request item did not end the access: %s", h.ends().UTC().Format(time.RFC3339), what)
		s.audit(ctx, r, []HistoryRow{{At: s.now(), Actor: System, Action: ActHeldEnded, Note: note}})
		s.alert(ctx, Alert{Channel: AlertOps, Action: ActHeldEnded, Request: r, Text: alertHeldEnded(&r, note)})
	}
	s.dropHeld(ctx, id)
	return nil
}
