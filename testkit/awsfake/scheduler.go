package awsfake

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scheduler fakes EventBridge Scheduler (REST-JSON). The "default" group
// exists; create others with [Scheduler.CreateGroup]. Schedules never fire on
// their own: tests fire them with [Scheduler.Fire] or [Scheduler.FireDue].
type Scheduler struct {
	f      *Fake
	groups map[string]map[string]*schedule // group → name → schedule; guarded by f.mu
}

// Schedule is a fake schedule as last written by CreateSchedule or
// UpdateSchedule.
type Schedule struct {
	Name                       string
	GroupName                  string
	ARN                        string
	ScheduleExpression         string
	ScheduleExpressionTimezone string
	FlexibleWindowMode         string
	ActionAfterCompletion      string
	State                      string
	TargetARN                  string
	RoleARN                    string
	Input                      string
	DeadLetterARN              string
	MaxRetryAttempts           *int
	MaxEventAgeSeconds         *int
	Created, Modified          time.Time
}

// At returns the time of an at(...) schedule and false for rate/cron ones.
func (s Schedule) At() (time.Time, bool) {
	t, err := parseAt(s.ScheduleExpression, s.ScheduleExpressionTimezone)
	return t, err == nil
}

type schedule struct {
	wire schedWire
	Schedule
}

// schedWire is the request/response body of the schedule operations.
type schedWire struct {
	ActionAfterCompletion string `json:",omitempty"`
	ClientToken           string `json:",omitempty"`
	Description           string `json:",omitempty"`
	FlexibleTimeWindow    *struct {
		Mode                   string `json:",omitempty"`
		MaximumWindowInMinutes *int   `json:",omitempty"`
	} `json:",omitempty"`
	GroupName                  string `json:",omitempty"`
	ScheduleExpression         string `json:",omitempty"`
	ScheduleExpressionTimezone string `json:",omitempty"`
	State                      string `json:",omitempty"`
	Target                     *struct {
		Arn              string `json:",omitempty"`
		RoleArn          string `json:",omitempty"`
		Input            string `json:",omitempty"`
		DeadLetterConfig *struct {
			Arn string `json:",omitempty"`
		} `json:",omitempty"`
		RetryPolicy *struct {
			MaximumEventAgeInSeconds *int `json:",omitempty"`
			MaximumRetryAttempts     *int `json:",omitempty"`
		} `json:",omitempty"`
		SqsParameters *struct {
			MessageGroupID string `json:"MessageGroupId,omitempty"`
		} `json:",omitempty"`
	} `json:",omitempty"`
}

var (
	scheduleNamePattern = regexp.MustCompile(`^[0-9a-zA-Z\-_.]{1,64}$`)
	atPattern           = regexp.MustCompile(`^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$`)
	schedRoleARN        = regexp.MustCompile(`^arn:aws(-[a-z]+)?:iam::\d{12}:role/[\w+=,.@/-]+$`)
)

// parseAt parses an at(yyyy-mm-ddThh:mm:ss) expression in timezone tz (UTC
// when empty, as Scheduler does).
func parseAt(expr, tz string) (time.Time, error) {
	m := atPattern.FindStringSubmatch(expr)
	if m == nil {
		return time.Time{}, fmt.Errorf("not an at() expression: %q", expr)
	}
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return time.Time{}, fmt.Errorf("unknown timezone %q", tz)
		}
		loc = l
	}
	return time.ParseInLocation("2006-01-02T15:04:05", m[1], loc)
}

// CreateGroup creates a schedule group (a no-op if it exists).
func (s *Scheduler) CreateGroup(name string) {
	s.f.update(func() {
		if _, ok := s.groups[name]; !ok {
			s.groups[name] = map[string]*schedule{}
		}
	})
}

// Schedules returns copies of a group's schedules, sorted by name.
func (s *Scheduler) Schedules(group string) []Schedule {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	g := s.groups[group]
	var out []Schedule
	for _, name := range slices.Sorted(maps.Keys(g)) {
		out = append(out, g[name].Schedule)
	}
	return out
}

// Get returns a copy of one schedule.
func (s *Scheduler) Get(group, name string) (Schedule, bool) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	sc, ok := s.groups[group][name]
	if !ok {
		return Schedule{}, false
	}
	return sc.Schedule, true
}

// Fire invokes a schedule now, as Scheduler would at its time: its
// Target.Input is delivered to the fake SQS queue named by Target.Arn, and
// the schedule is deleted when its ActionAfterCompletion is DELETE. It fails
// when the schedule does not exist, is DISABLED, or targets anything but a
// queue of the fake.
func (s *Scheduler) Fire(group, name string) error {
	sc, ok := s.Get(group, name)
	if !ok {
		return fmt.Errorf("awsfake: fire %s/%s: no such schedule", group, name)
	}
	if sc.State == "DISABLED" {
		return fmt.Errorf("awsfake: fire %s/%s: schedule is disabled", group, name)
	}
	const prefix = "arn:aws:sqs:"
	parts := strings.Split(sc.TargetARN, ":")
	if !strings.HasPrefix(sc.TargetARN, prefix) || len(parts) != 6 {
		return fmt.Errorf("awsfake: fire %s/%s: target %q is not an SQS queue ARN", group, name, sc.TargetARN)
	}
	if _, err := s.f.sqs.Send(parts[5], sc.Input); err != nil {
		return fmt.Errorf("awsfake: fire %s/%s: %w", group, name, err)
	}
	if sc.ActionAfterCompletion == "DELETE" {
		s.f.update(func() { delete(s.groups[group], name) })
	}
	return nil
}

// FireDue fires every at() schedule in group whose time is at or before now
// (in time order) and returns their names. It stops at the first failure.
func (s *Scheduler) FireDue(group string, now time.Time) ([]string, error) {
	type due struct {
		name string
		at   time.Time
	}
	var todo []due
	for _, sc := range s.Schedules(group) {
		if at, ok := sc.At(); ok && !at.After(now) && sc.State != "DISABLED" {
			todo = append(todo, due{sc.Name, at})
		}
	}
	slices.SortStableFunc(todo, func(a, b due) int { return a.at.Compare(b.at) })
	var fired []string
	for _, d := range todo {
		if err := s.Fire(group, d.name); err != nil {
			return fired, err
		}
		fired = append(fired, d.name)
	}
	return fired, nil
}

// schedulerOp maps a REST request to its operation name.
func schedulerOp(method, path string) string {
	switch {
	case path == "/schedules" && method == http.MethodGet:
		return "ListSchedules"
	case strings.HasPrefix(path, "/schedules/") && restName(path) != "":
		switch method {
		case http.MethodPost:
			return "CreateSchedule"
		case http.MethodPut:
			return "UpdateSchedule"
		case http.MethodGet:
			return "GetSchedule"
		case http.MethodDelete:
			return "DeleteSchedule"
		}
	}
	return method + " " + path
}

// restName returns the unescaped {Name} of /schedules/{Name}.
func restName(path string) string {
	raw, ok := strings.CutPrefix(path, "/schedules/")
	if !ok || raw == "" || strings.Contains(raw, "/") {
		return ""
	}
	name, err := url.PathUnescape(raw)
	if err != nil {
		return ""
	}
	return name
}

func schedValidation(format string, args ...any) *apiError {
	return clientErr("ValidationException", format, args...)
}

func notFound(format string, args ...any) *apiError {
	return &apiError{status: http.StatusNotFound, code: "ResourceNotFoundException", msg: fmt.Sprintf(format, args...), sender: true}
}

// validate checks a Create/UpdateSchedule body like Scheduler does.
func (w *schedWire) validate(name string) *apiError {
	if !scheduleNamePattern.MatchString(name) {
		return schedValidation("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9a-zA-Z-_.]+$ and have length between 1 and 64", name)
	}
	if w.ScheduleExpression == "" {
		return schedValidation("1 validation error detected: Value null at 'scheduleExpression' failed to satisfy constraint: Member must not be null")
	}
	switch {
	case strings.HasPrefix(w.ScheduleExpression, "at("):
		if _, err := parseAt(w.ScheduleExpression, w.ScheduleExpressionTimezone); err != nil {
			return schedValidation("Invalid Schedule Expression %s.", w.ScheduleExpression)
		}
	case strings.HasPrefix(w.ScheduleExpression, "rate(") && strings.HasSuffix(w.ScheduleExpression, ")"),
		strings.HasPrefix(w.ScheduleExpression, "cron(") && strings.HasSuffix(w.ScheduleExpression, ")"):
	default:
		return schedValidation("Invalid Schedule Expression %s.", w.ScheduleExpression)
	}
	if w.ScheduleExpressionTimezone != "" {
		if _, err := time.LoadLocation(w.ScheduleExpressionTimezone); err != nil {
			return schedValidation("Invalid ScheduleExpressionTimezone %s.", w.ScheduleExpressionTimezone)
		}
	}
	if w.FlexibleTimeWindow == nil {
		return schedValidation("1 validation error detected: Value null at 'flexibleTimeWindow' failed to satisfy constraint: Member must not be null")
	}
	switch w.FlexibleTimeWindow.Mode {
	case "OFF":
	case "FLEXIBLE":
		if m := w.FlexibleTimeWindow.MaximumWindowInMinutes; m == nil || *m < 1 || *m > 1440 {
			return schedValidation("MaximumWindowInMinutes must be between 1 and 1440 when Mode is FLEXIBLE.")
		}
	default:
		return schedValidation("1 validation error detected: Value '%s' at 'flexibleTimeWindow.mode' failed to satisfy constraint: Member must satisfy enum value set: [OFF, FLEXIBLE]", w.FlexibleTimeWindow.Mode)
	}
	switch w.ActionAfterCompletion {
	case "", "NONE", "DELETE":
	default:
		return schedValidation("Invalid ActionAfterCompletion %s.", w.ActionAfterCompletion)
	}
	switch w.State {
	case "", "ENABLED", "DISABLED":
	default:
		return schedValidation("Invalid State %s.", w.State)
	}
	t := w.Target
	if t == nil {
		return schedValidation("1 validation error detected: Value null at 'target' failed to satisfy constraint: Member must not be null")
	}
	if t.Arn == "" || !strings.HasPrefix(t.Arn, "arn:") {
		return schedValidation("Invalid target ARN %q.", t.Arn)
	}
	if !schedRoleARN.MatchString(t.RoleArn) {
		return schedValidation("1 validation error detected: Value '%s' at 'target.roleArn' failed to satisfy constraint: Member must satisfy regular expression pattern: ^arn:aws(-[a-z]+)?:iam::\\d{12}:role\\/[\\w+=,.@\\/-]+$", t.RoleArn)
	}
	if rp := t.RetryPolicy; rp != nil {
		if a := rp.MaximumRetryAttempts; a != nil && (*a < 0 || *a > 185) {
			return schedValidation("MaximumRetryAttempts must be between 0 and 185.")
		}
		if a := rp.MaximumEventAgeInSeconds; a != nil && (*a < 60 || *a > 86400) {
			return schedValidation("MaximumEventAgeInSeconds must be between 60 and 86400.")
		}
	}
	if d := t.DeadLetterConfig; d != nil && d.Arn != "" && !strings.HasPrefix(d.Arn, "arn:aws:sqs:") {
		return schedValidation("DeadLetterConfig Arn must be an SQS queue ARN, got %q.", d.Arn)
	}
	return nil
}

func (s *Scheduler) put(r *request, create bool) (any, *apiError) {
	name := restName(r.path)
	var w schedWire
	if aerr := decodeJSON(r, &w); aerr != nil {
		return nil, aerr
	}
	if aerr := w.validate(name); aerr != nil {
		return nil, aerr
	}
	group := w.GroupName
	if group == "" {
		group = "default"
	}
	arn := fmt.Sprintf("arn:aws:scheduler:%s:%s:schedule/%s/%s", Region, AccountID, group, name)
	var aerr *apiError
	s.f.update(func() {
		g, ok := s.groups[group]
		if !ok {
			aerr = notFound("Schedule group %s does not exist.", group)
			return
		}
		old, exists := g[name]
		switch {
		case create && exists:
			aerr = &apiError{status: http.StatusConflict, code: "ConflictException", msg: fmt.Sprintf("Schedule %s already exists.", name), sender: true}
			return
		case !create && !exists:
			aerr = notFound("Schedule %s does not exist.", name)
			return
		}
		sc := &schedule{wire: w}
		sc.Schedule = Schedule{
			Name: name, GroupName: group, ARN: arn,
			ScheduleExpression:         w.ScheduleExpression,
			ScheduleExpressionTimezone: w.ScheduleExpressionTimezone,
			FlexibleWindowMode:         w.FlexibleTimeWindow.Mode,
			ActionAfterCompletion:      w.ActionAfterCompletion,
			State:                      w.State,
			TargetARN:                  w.Target.Arn,
			RoleARN:                    w.Target.RoleArn,
			Input:                      w.Target.Input,
			Created:                    r.now,
			Modified:                   r.now,
		}
		if sc.State == "" {
			sc.State = "ENABLED"
		}
		if sc.ActionAfterCompletion == "" {
			sc.ActionAfterCompletion = "NONE"
		}
		if d := w.Target.DeadLetterConfig; d != nil {
			sc.DeadLetterARN = d.Arn
		}
		if rp := w.Target.RetryPolicy; rp != nil {
			sc.MaxRetryAttempts, sc.MaxEventAgeSeconds = rp.MaximumRetryAttempts, rp.MaximumEventAgeInSeconds
		}
		if exists {
			sc.Created = old.Created
		}
		g[name] = sc
	})
	if aerr != nil {
		return nil, aerr
	}
	return map[string]string{"ScheduleArn": arn}, nil
}

func (s *Scheduler) createSchedule(r *request) (any, *apiError) { return s.put(r, true) }
func (s *Scheduler) updateSchedule(r *request) (any, *apiError) { return s.put(r, false) }

// groupParam returns the group named by the query parameter key.
func groupParam(r *request, key string) string {
	if g := r.query.Get(key); g != "" {
		return g
	}
	return "default"
}

func (s *Scheduler) getSchedule(r *request) (any, *apiError) {
	name, group := restName(r.path), groupParam(r, "groupName")
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	g, ok := s.groups[group]
	if !ok {
		return nil, notFound("Schedule group %s does not exist.", group)
	}
	sc, ok := g[name]
	if !ok {
		return nil, notFound("Schedule %s does not exist.", name)
	}
	out := map[string]any{
		"Arn":                   sc.ARN,
		"Name":                  sc.Name,
		"GroupName":             sc.GroupName,
		"State":                 sc.State,
		"ActionAfterCompletion": sc.ActionAfterCompletion,
		"ScheduleExpression":    sc.ScheduleExpression,
		"FlexibleTimeWindow":    sc.wire.FlexibleTimeWindow,
		"Target":                sc.wire.Target,
		"CreationDate":          epoch(sc.Created),
		"LastModificationDate":  epoch(sc.Modified),
	}
	if sc.ScheduleExpressionTimezone != "" {
		out["ScheduleExpressionTimezone"] = sc.ScheduleExpressionTimezone
	}
	if sc.wire.Description != "" {
		out["Description"] = sc.wire.Description
	}
	return out, nil
}

func (s *Scheduler) deleteSchedule(r *request) (any, *apiError) {
	name, group := restName(r.path), groupParam(r, "groupName")
	var aerr *apiError
	s.f.update(func() {
		g, ok := s.groups[group]
		if !ok {
			aerr = notFound("Schedule group %s does not exist.", group)
			return
		}
		if _, ok := g[name]; !ok {
			aerr = notFound("Schedule %s does not exist.", name)
			return
		}
		delete(g, name)
	})
	if aerr != nil {
		return nil, aerr
	}
	return struct{}{}, nil
}

func (s *Scheduler) listSchedules(r *request) (any, *apiError) {
	group := r.query.Get("ScheduleGroup")
	prefix := r.query.Get("NamePrefix")
	state := r.query.Get("State")
	maxResults := 100
	if v := r.query.Get("MaxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return nil, schedValidation("MaxResults must be between 1 and 100.")
		}
		maxResults = n
	}
	start := 0
	if v := r.query.Get("NextToken"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, schedValidation("Invalid NextToken.")
		}
		start = n
	}
	s.f.mu.Lock()
	var groups []string
	if group != "" {
		if _, ok := s.groups[group]; !ok {
			s.f.mu.Unlock()
			return nil, notFound("Schedule group %s does not exist.", group)
		}
		groups = []string{group}
	} else {
		groups = slices.Sorted(maps.Keys(s.groups))
	}
	var all []map[string]any
	for _, gn := range groups {
		g := s.groups[gn]
		for _, name := range slices.Sorted(maps.Keys(g)) {
			sc := g[name]
			if !strings.HasPrefix(name, prefix) || (state != "" && sc.State != state) {
				continue
			}
			all = append(all, map[string]any{
				"Arn": sc.ARN, "Name": sc.Name, "GroupName": sc.GroupName, "State": sc.State,
				"CreationDate": epoch(sc.Created), "LastModificationDate": epoch(sc.Modified),
				"Target": map[string]string{"Arn": sc.TargetARN},
			})
		}
	}
	s.f.mu.Unlock()
	out := map[string]any{"Schedules": []map[string]any{}}
	if start < len(all) {
		end := min(start+maxResults, len(all))
		out["Schedules"] = all[start:end]
		if end < len(all) {
			out["NextToken"] = strconv.Itoa(end)
		}
	}
	return out, nil
}
