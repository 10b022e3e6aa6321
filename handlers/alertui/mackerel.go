package alertui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/alert"
)

// mkHeader is read first: it names the event, and only known events are
// decoded further, so an unknown event with surprising fields still parses.
type mkHeader struct {
	Event   text `json:"event"`
	OrgName text `json:"orgName"`
}

type mkPayload struct {
	OrgName           text            `json:"orgName"`
	Event             text            `json:"event"`
	ImageURL          text            `json:"imageUrl"`
	Memo              text            `json:"memo"`
	Type              text            `json:"type"`
	Message           text            `json:"message"`
	Host              *mkHost         `json:"host"`
	Service           *mkService      `json:"service"`
	Alert             *mkAlert        `json:"alert"`
	AlertGroup        *mkAlertGroup   `json:"alertGroup"`
	AlertGroupSetting *mkGroupSetting `json:"alertGroupSetting"`
	User              mkUser          `json:"user"`
	FromStatus        text            `json:"fromStatus"`
	Monitor           *mkMonitor      `json:"monitor"`
	ResourceInfo      *mkResourceInfo `json:"resourceInfo"`
}

type mkHost struct {
	ID        text     `json:"id"`
	Name      text     `json:"name"`
	URL       text     `json:"url"`
	Status    text     `json:"status"`
	IsRetired boolean  `json:"isRetired"`
	Roles     []mkRole `json:"roles"`
}

type mkRole struct {
	Fullname    text `json:"fullname"`
	ServiceName text `json:"serviceName"`
	ServiceURL  text `json:"serviceUrl"`
	RoleName    text `json:"roleName"`
	RoleURL     text `json:"roleUrl"`
}

type mkService struct {
	ID   text `json:"id"`
	Name text `json:"name"`
	// roles (shape undocumented) are left in the raw payload.
}

type mkAlert struct {
	ID                text    `json:"id"`
	Status            text    `json:"status"`
	IsOpen            boolean `json:"isOpen"`
	Trigger           text    `json:"trigger"`
	URL               text    `json:"url"`
	OpenedAt          epoch   `json:"openedAt"`
	ClosedAt          epoch   `json:"closedAt"`
	StatusChangedAt   epoch   `json:"statusChangedAt"`
	CreatedAt         epoch   `json:"createdAt"` // milliseconds, deprecated
	MonitorName       text    `json:"monitorName"`
	MetricLabel       text    `json:"metricLabel"`
	MetricValue       number  `json:"metricValue"`
	CriticalThreshold number  `json:"criticalThreshold"`
	WarningThreshold  number  `json:"warningThreshold"`
	MonitorOperator   text    `json:"monitorOperator"`
}

type mkAlertGroup struct {
	ID        text    `json:"id"`
	Status    text    `json:"status"`
	IsOpen    boolean `json:"isOpen"`
	URL       text    `json:"url"`
	OpenedAt  epoch   `json:"openedAt"`
	CreatedAt epoch   `json:"createdAt"`
	UpdatedAt epoch   `json:"updatedAt"`
	ClosedAt  epoch   `json:"closedAt"`
}

type mkGroupSetting struct {
	ID   text `json:"id"`
	Name text `json:"name"`
	Memo text `json:"memo"`
}

type mkMonitor struct {
	ID   text `json:"id"`
	Name text `json:"name"`
	Type text `json:"type"`
}

type mkResourceInfo struct {
	Service      text `json:"service"`
	Region       text `json:"region"`
	AccountID    text `json:"accountId"`
	ResourceType text `json:"resourceType"`
	ResourceID   text `json:"resourceId"`
}

// mkUser is the acting user: null, an object (screenName, name, email or id,
// first non-empty wins) or, defensively, a plain string.
type mkUser string

func (u *mkUser) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var o struct {
			ScreenName text `json:"screenName"`
			Name       text `json:"name"`
			Email      text `json:"email"`
			ID         text `json:"id"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		for _, v := range []text{o.ScreenName, o.Name, o.Email, o.ID} {
			if v != "" {
				*u = mkUser(v)
				return nil
			}
		}
		*u = ""
		return nil
	}
	var t text
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	*u = mkUser(t)
	return nil
}

// ParseMackerel parses one Mackerel webhook body. alert and alertGroup
// events yield an Event with an Alert; hostStatus, hostRegister, hostRetire,
// monitorCreate/Update/Delete, sample and any event tokken does not know
// yield a Notice (unknown events are never dropped). Errors wrap
// ErrBadPayload.
func ParseMackerel(body []byte) (alert.Event, error) {
	const what = "mackerel webhook"
	var h mkHeader
	if err := decodeObject(what, body, &h); err != nil {
		return alert.Event{}, err
	}
	raw := json.RawMessage(bytes.Clone(bytes.TrimSpace(body)))
	kind := mackerelKind(string(h.Event))
	if kind == alert.KindUnknown {
		name := string(h.Event)
		if name == "" {
			name = "(no event field)"
		}
		return noticeEvent(alert.Notice{
			Source: alert.SourceMackerel, Kind: kind, Type: string(h.Event), Org: string(h.OrgName),
			Title: "Mackerel event " + name, Raw: raw,
		}), nil
	}
	var p mkPayload
	if err := decodeObject(what, body, &p); err != nil {
		return alert.Event{}, err
	}
	switch kind {
	case alert.KindAlert:
		a, err := mackerelAlert(p, raw)
		if err != nil {
			return alert.Event{}, fmt.Errorf("%s: %w", what, err)
		}
		return alert.Event{Kind: kind, Alert: &a}, nil
	case alert.KindAlertGroup:
		a, err := mackerelAlertGroup(p, raw)
		if err != nil {
			return alert.Event{}, fmt.Errorf("%s: %w", what, err)
		}
		return alert.Event{Kind: kind, Alert: &a}, nil
	}
	return noticeEvent(mackerelNotice(kind, p, raw)), nil
}

func mackerelKind(event string) alert.Kind {
	switch k := alert.Kind(event); k {
	case alert.KindAlert, alert.KindAlertGroup, alert.KindHostStatus, alert.KindHostRegister,
		alert.KindHostRetire, alert.KindMonitorCreate, alert.KindMonitorUpdate,
		alert.KindMonitorDelete, alert.KindSample:
		return k
	}
	return alert.KindUnknown
}

func noticeEvent(n alert.Notice) alert.Event {
	n.Key = string(n.Source) + ":" + string(n.Kind) + ":" + payloadKey(n.Raw)
	return alert.Event{Kind: n.Kind, Notice: &n}
}

// status normalises s; an unrecognised non-empty word becomes unknown (the
// raw payload keeps the original), an empty one is decided by open.
func status(s string, open bool) alert.Status {
	if st, ok := alert.ParseStatus(s); ok {
		return st
	}
	if strings.TrimSpace(s) == "" && !open {
		return alert.StatusOK
	}
	return alert.StatusUnknown
}

func mackerelAlert(p mkPayload, raw json.RawMessage) (alert.Alert, error) {
	if p.Alert == nil {
		return alert.Alert{}, badf("alert event without an alert object")
	}
	m := p.Alert
	id := strings.TrimSpace(string(m.ID))
	if id == "" {
		return alert.Alert{}, badf("alert event without alert.id")
	}
	a := alert.Alert{
		Source:          alert.SourceMackerel,
		Key:             "mackerel:" + id,
		ID:              id,
		Kind:            alert.KindAlert,
		Org:             string(p.OrgName),
		Monitor:         string(m.MonitorName),
		MonitorType:     string(p.Type),
		Message:         string(p.Message),
		Memo:            string(p.Memo),
		Trigger:         string(m.Trigger),
		User:            string(p.User),
		ImageURL:        string(p.ImageURL),
		URL:             string(m.URL),
		OpenedAt:        m.OpenedAt.t,
		ClosedAt:        m.ClosedAt.t,
		StatusChangedAt: m.StatusChangedAt.t,
		Raw:             raw,
		Metric: alert.Metric{
			Label:    string(m.MetricLabel),
			Value:    m.MetricValue.v,
			Operator: string(m.MonitorOperator),
			Warning:  m.WarningThreshold.v,
			Critical: m.CriticalThreshold.v,
		},
	}
	if a.OpenedAt.IsZero() {
		a.OpenedAt = m.CreatedAt.t
	}
	// isOpen is authoritative; without it an alert is open until it is ok
	// or has a close time.
	st := strings.ToLower(strings.TrimSpace(string(m.Status)))
	if m.IsOpen.v != nil {
		a.Open = *m.IsOpen.v
	} else {
		a.Open = st != string(alert.StatusOK) && a.ClosedAt.IsZero()
	}
	a.Status = status(st, a.Open)
	if a.Open {
		// Mackerel's own documented example carries closedAt on an open
		// alert; an open alert has not closed.
		a.ClosedAt = time.Time{}
	}
	if a.Monitor == "" {
		a.Monitor = "(unnamed monitor)"
	}
	a.Host = mackerelHost(p.Host)
	if p.Service != nil {
		a.Service = string(p.Service.Name)
	}
	applyResourceInfo(&a, p.ResourceInfo)
	return a, nil
}

func mackerelAlertGroup(p mkPayload, raw json.RawMessage) (alert.Alert, error) {
	if p.AlertGroup == nil {
		return alert.Alert{}, badf("alertGroup event without an alertGroup object")
	}
	g := p.AlertGroup
	id := strings.TrimSpace(string(g.ID))
	if id == "" {
		return alert.Alert{}, badf("alertGroup event without alertGroup.id")
	}
	a := alert.Alert{
		Source:      alert.SourceMackerel,
		Key:         "mackerel-group:" + id,
		ID:          id,
		Kind:        alert.KindAlertGroup,
		Org:         string(p.OrgName),
		Monitor:     "alert group",
		MonitorType: "alertGroup",
		Message:     string(p.Message),
		Memo:        string(p.Memo),
		User:        string(p.User),
		ImageURL:    string(p.ImageURL),
		URL:         string(g.URL),
		OpenedAt:    g.OpenedAt.t,
		ClosedAt:    g.ClosedAt.t,
		Raw:         raw,
	}
	if a.OpenedAt.IsZero() {
		a.OpenedAt = g.CreatedAt.t
	}
	a.StatusChangedAt = g.UpdatedAt.t
	if s := p.AlertGroupSetting; s != nil {
		if s.Name != "" {
			a.Monitor = string(s.Name)
		}
		if a.Memo == "" {
			a.Memo = string(s.Memo)
		}
	}
	// alertGroup statuses are upper case (OK, WARNING, CRITICAL, UNKNOWN).
	st := strings.ToLower(strings.TrimSpace(string(g.Status)))
	if g.IsOpen.v != nil {
		a.Open = *g.IsOpen.v
	} else {
		a.Open = st != string(alert.StatusOK) && a.ClosedAt.IsZero()
	}
	a.Status = status(st, a.Open)
	if a.Open {
		a.ClosedAt = time.Time{}
	}
	return a, nil
}

func mackerelHost(h *mkHost) *alert.Host {
	if h == nil {
		return nil
	}
	out := &alert.Host{
		ID:     string(h.ID),
		Name:   string(h.Name),
		URL:    string(h.URL),
		Status: strings.ToLower(string(h.Status)),
	}
	if h.IsRetired.v != nil {
		out.Retired = *h.IsRetired.v
	}
	if bot.IsInstanceID(out.Name) { // hosts registered by AWS integration are often named by instance id
		out.InstanceID = out.Name
	}
	for _, r := range h.Roles {
		role := alert.Role{
			Service:    string(r.ServiceName),
			Role:       string(r.RoleName),
			ServiceURL: string(r.ServiceURL),
			RoleURL:    string(r.RoleURL),
		}
		if role.Service == "" || role.Role == "" {
			svc, rl, ok := strings.Cut(string(r.Fullname), ":")
			if ok {
				role.Service, role.Role = strings.TrimSpace(svc), strings.TrimSpace(rl)
			} else if role.Role == "" {
				role.Role = strings.TrimSpace(string(r.Fullname))
			}
		}
		if role.Service != "" || role.Role != "" {
			out.Roles = append(out.Roles, role)
		}
	}
	return out
}

// applyResourceInfo takes the EC2 instance behind the alert from Mackerel's
// resourceInfo (sent for hosts Mackerel knows to be EC2 instances).
func applyResourceInfo(a *alert.Alert, ri *mkResourceInfo) {
	if ri == nil {
		return
	}
	if a.Account == "" {
		a.Account = string(ri.AccountID)
	}
	if a.Region == "" {
		a.Region = string(ri.Region)
	}
	id := string(ri.ResourceID)
	if strings.EqualFold(string(ri.Service), "ec2") && bot.IsInstanceID(id) {
		if a.Host == nil {
			a.Host = &alert.Host{ID: id, Name: id}
		}
		a.Host.InstanceID = id
	}
}

func mackerelNotice(kind alert.Kind, p mkPayload, raw json.RawMessage) alert.Notice {
	n := alert.Notice{
		Source:  alert.SourceMackerel,
		Kind:    kind,
		Type:    string(p.Event),
		Org:     string(p.OrgName),
		Host:    mackerelHost(p.Host),
		User:    string(p.User),
		Message: string(p.Message),
		Memo:    string(p.Memo),
		Raw:     raw,
	}
	hostName := "(unknown host)"
	if n.Host != nil {
		n.URL = n.Host.URL
		for _, v := range []string{n.Host.Name, n.Host.ID} {
			if v != "" {
				hostName = v
				break
			}
		}
	}
	monName := "(unnamed monitor)"
	if p.Monitor != nil {
		n.Monitor = string(p.Monitor.Name)
		if n.Monitor != "" {
			monName = n.Monitor
		}
	}
	switch kind {
	case alert.KindHostStatus:
		to := ""
		if n.Host != nil {
			to = n.Host.Status
		}
		switch {
		case p.FromStatus != "" && to != "":
			n.Title = fmt.Sprintf("Host %s status changed: %s → %s", hostName, p.FromStatus, to)
		case to != "":
			n.Title = fmt.Sprintf("Host %s is now %s", hostName, to)
		default:
			n.Title = fmt.Sprintf("Host %s status changed", hostName)
		}
	case alert.KindHostRegister:
		n.Title = fmt.Sprintf("Host %s registered", hostName)
	case alert.KindHostRetire:
		n.Title = fmt.Sprintf("Host %s retired", hostName)
	case alert.KindMonitorCreate:
		n.Title = fmt.Sprintf("Monitor %q created", monName)
	case alert.KindMonitorUpdate:
		n.Title = fmt.Sprintf("Monitor %q updated", monName)
	case alert.KindMonitorDelete:
		n.Title = fmt.Sprintf("Monitor %q deleted", monName)
	case alert.KindSample:
		n.Title = "Test notification from Mackerel"
	}
	if n.User != "" {
		n.Title += " by " + n.User
	}
	return n
}
