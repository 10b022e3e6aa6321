package alertui

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/bot/alert"
)

// DetailTypeAlarmStateChange is the EventBridge detail-type of CloudWatch
// alarm state changes.
const DetailTypeAlarmStateChange = "CloudWatch Alarm State Change"

// alarm is what both CloudWatch delivery paths say about an alarm, before it
// becomes an alert.Alert.
type alarm struct {
	name, arn, account, region, description string
	state, previous, reason                 string
	at                                      time.Time
	metric, namespace                       string
	dims                                    map[string]string
	operator                                string
	threshold, value                        *float64
	tags                                    map[string]string
	composite                               bool
	raw                                     json.RawMessage
}

// snsAlarm is the alarm JSON inside Sns.Message. It mirrors
// events.CloudWatchAlarmSNSPayload with lenient field types.
type snsAlarm struct {
	AlarmName        text      `json:"AlarmName"`
	AlarmDescription text      `json:"AlarmDescription"`
	AWSAccountID     text      `json:"AWSAccountId"`
	NewStateValue    text      `json:"NewStateValue"`
	NewStateReason   text      `json:"NewStateReason"`
	StateChangeTime  text      `json:"StateChangeTime"`
	Region           text      `json:"Region"`
	AlarmARN         text      `json:"AlarmArn"`
	OldStateValue    text      `json:"OldStateValue"`
	AlarmTags        stringMap `json:"AlarmTags"`
	Trigger          struct {
		MetricName         text     `json:"MetricName"`
		Namespace          text     `json:"Namespace"`
		ComparisonOperator text     `json:"ComparisonOperator"`
		Threshold          number   `json:"Threshold"`
		Dimensions         []snsDim `json:"Dimensions"`
		Metrics            []struct {
			ID         text    `json:"Id"`
			Expression text    `json:"Expression"`
			Label      text    `json:"Label"`
			ReturnData boolean `json:"ReturnData"`
			MetricStat struct {
				Metric struct {
					MetricName text     `json:"MetricName"`
					Namespace  text     `json:"Namespace"`
					Dimensions []snsDim `json:"Dimensions"`
				} `json:"Metric"`
			} `json:"MetricStat"`
		} `json:"Metrics"`
	} `json:"Trigger"`
}

type snsDim struct {
	Name  text `json:"name"`
	Value text `json:"value"`
}

// ParseCloudWatchSNS parses a Lambda SNS event. Each record whose message
// is a CloudWatch alarm notification (a JSON string inside Sns.Message)
// yields an alert Event; any other message on the topic yields a Notice of
// kind unknown keyed by the SNS message id, so it is shown rather than
// dropped. An event without records is an error.
func ParseCloudWatchSNS(ev events.SNSEvent) ([]alert.Event, error) {
	if len(ev.Records) == 0 {
		return nil, badf("sns event: no records")
	}
	out := make([]alert.Event, 0, len(ev.Records))
	for i, rec := range ev.Records {
		e, err := parseSNSRecord(rec.SNS)
		if err != nil {
			return nil, fmt.Errorf("sns record %d: %w", i, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func parseSNSRecord(s events.SNSEntity) (alert.Event, error) {
	msg := []byte(s.Message)
	trimmed := bytes.TrimSpace(msg)
	var p snsAlarm
	isAlarm := len(trimmed) > 0 && trimmed[0] == '{'
	if isAlarm {
		if err := decodeObject("cloudwatch alarm message", trimmed, &p); err != nil {
			return alert.Event{}, err
		}
		isAlarm = p.AlarmName != "" || p.AlarmARN != ""
	}
	if !isAlarm {
		title := "SNS message"
		if s.Subject != "" {
			title += ": " + s.Subject
		}
		raw, _ := json.Marshal(s) // SNSEntity always marshals
		n := alert.Notice{
			Source: alert.SourceCloudWatch, Kind: alert.KindUnknown, Type: "sns",
			Title: title, Message: s.Message, At: s.Timestamp, Raw: raw,
		}
		n.Key = "cloudwatch:sns:" + s.MessageID
		if s.MessageID == "" {
			n.Key = "cloudwatch:sns:" + payloadKey(raw)
		}
		return alert.Event{Kind: n.Kind, Notice: &n}, nil
	}
	al := alarm{
		name:        string(p.AlarmName),
		arn:         string(p.AlarmARN),
		account:     string(p.AWSAccountID),
		description: string(p.AlarmDescription),
		state:       string(p.NewStateValue),
		previous:    string(p.OldStateValue),
		reason:      string(p.NewStateReason),
		metric:      string(p.Trigger.MetricName),
		namespace:   string(p.Trigger.Namespace),
		operator:    string(p.Trigger.ComparisonOperator),
		threshold:   p.Trigger.Threshold.v,
		tags:        p.AlarmTags,
		dims:        map[string]string{},
		raw:         json.RawMessage(bytes.Clone(trimmed)),
	}
	al.at = parseAWSTime(string(p.StateChangeTime))
	if al.at.IsZero() {
		al.at = s.Timestamp.UTC()
	}
	for _, d := range p.Trigger.Dimensions {
		al.dims[string(d.Name)] = string(d.Value)
	}
	for _, m := range p.Trigger.Metrics {
		for _, d := range m.MetricStat.Metric.Dimensions {
			if _, dup := al.dims[string(d.Name)]; !dup {
				al.dims[string(d.Name)] = string(d.Value)
			}
		}
		// The metric the alarm evaluates is the one returning data.
		if m.ReturnData.v != nil && *m.ReturnData.v && al.metric == "" {
			al.metric = cmp.Or(string(m.Label), string(m.MetricStat.Metric.MetricName), string(m.Expression), string(m.ID))
			al.namespace = string(m.MetricStat.Metric.Namespace)
		}
	}
	al.value = valueFromReason(al.reason)
	if al.operator == "" {
		al.operator = operatorFromReason(al.reason)
	}
	a := al.toAlert()
	return alert.Event{Kind: alert.KindAlert, Alert: &a}, nil
}

// ebEnvelope is an EventBridge event.
type ebEnvelope struct {
	ID         text            `json:"id"`
	DetailType text            `json:"detail-type"`
	Source     text            `json:"source"`
	Account    text            `json:"account"`
	Time       text            `json:"time"`
	Region     text            `json:"region"`
	Resources  []text          `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

type ebDetail struct {
	AlarmName     text      `json:"alarmName"`
	AlarmTags     stringMap `json:"alarmTags"`
	State         ebState   `json:"state"`
	PreviousState ebState   `json:"previousState"`
	Configuration struct {
		Description text `json:"description"`
		AlarmRule   text `json:"alarmRule"`
		Metrics     []struct {
			ID         text    `json:"id"`
			Label      text    `json:"label"`
			Expression text    `json:"expression"`
			ReturnData boolean `json:"returnData"`
			MetricStat struct {
				Metric struct {
					Name       text      `json:"name"`
					Namespace  text      `json:"namespace"`
					Dimensions stringMap `json:"dimensions"`
				} `json:"metric"`
			} `json:"metricStat"`
		} `json:"metrics"`
	} `json:"configuration"`
}

type ebState struct {
	Value      text `json:"value"`
	Reason     text `json:"reason"`
	ReasonData text `json:"reasonData"`
	Timestamp  text `json:"timestamp"`
}

// ParseCloudWatchEventBridge parses one EventBridge event. A "CloudWatch
// Alarm State Change" from aws.cloudwatch yields an alert Event; any other
// well-formed event yields a Notice of kind unknown (shown, not dropped).
// Errors wrap ErrBadPayload.
func ParseCloudWatchEventBridge(raw json.RawMessage) (alert.Event, error) {
	const what = "eventbridge event"
	var env ebEnvelope
	if err := decodeObject(what, raw, &env); err != nil {
		return alert.Event{}, err
	}
	trimmed := json.RawMessage(bytes.Clone(bytes.TrimSpace(raw)))
	if string(env.DetailType) != DetailTypeAlarmStateChange {
		n := alert.Notice{
			Source: alert.SourceCloudWatch, Kind: alert.KindUnknown, Type: string(env.DetailType),
			Org:   string(env.Account),
			Title: fmt.Sprintf("EventBridge event %q from %s", string(env.DetailType), cmp.Or(string(env.Source), "unknown source")),
			At:    parseAWSTime(string(env.Time)),
			Raw:   trimmed,
		}
		n.Key = "cloudwatch:event:" + cmp.Or(string(env.ID), payloadKey(trimmed))
		return alert.Event{Kind: n.Kind, Notice: &n}, nil
	}
	var d ebDetail
	if err := decodeObject(what+" detail", env.Detail, &d); err != nil {
		return alert.Event{}, err
	}
	if d.AlarmName == "" {
		return alert.Event{}, badf("%s: alarm state change without detail.alarmName", what)
	}
	al := alarm{
		name:        string(d.AlarmName),
		account:     string(env.Account),
		region:      string(env.Region),
		description: string(d.Configuration.Description),
		state:       string(d.State.Value),
		previous:    string(d.PreviousState.Value),
		reason:      string(d.State.Reason),
		tags:        d.AlarmTags,
		dims:        map[string]string{},
		composite:   d.Configuration.AlarmRule != "",
		raw:         trimmed,
	}
	for _, r := range env.Resources {
		if strings.Contains(string(r), ":alarm:") {
			al.arn = string(r)
			break
		}
	}
	al.at = parseAWSTime(string(d.State.Timestamp))
	if al.at.IsZero() {
		al.at = parseAWSTime(string(env.Time))
	}
	for _, m := range d.Configuration.Metrics {
		for k, v := range m.MetricStat.Metric.Dimensions {
			if _, dup := al.dims[k]; !dup {
				al.dims[k] = v
			}
		}
		returns := m.ReturnData.v == nil || *m.ReturnData.v // single-metric alarms omit it
		if returns && al.metric == "" {
			al.metric = cmp.Or(string(m.Label), string(m.MetricStat.Metric.Name), string(m.Expression), string(m.ID))
			al.namespace = string(m.MetricStat.Metric.Namespace)
		}
	}
	// reasonData (a JSON string) carries the threshold and the datapoints.
	var rd struct {
		Threshold        number   `json:"threshold"`
		RecentDatapoints []number `json:"recentDatapoints"`
	}
	if rdb := bytes.TrimSpace([]byte(d.State.ReasonData)); len(rdb) > 0 && rdb[0] == '{' {
		if json.Unmarshal(rdb, &rd) == nil {
			al.threshold = rd.Threshold.v
			if n := len(rd.RecentDatapoints); n > 0 {
				al.value = rd.RecentDatapoints[n-1].v
			}
		}
	}
	if al.value == nil {
		al.value = valueFromReason(al.reason)
	}
	al.operator = operatorFromReason(al.reason)
	a := al.toAlert()
	return alert.Event{Kind: alert.KindAlert, Alert: &a}, nil
}

// toAlert maps an alarm to an Alert: ALARM is critical (warning when the
// alarm is tagged severity=warning), INSUFFICIENT_DATA unknown, OK closes.
// The InstanceId dimension becomes the host, so "request access to this
// host" can target it.
func (al alarm) toAlert() alert.Alert {
	region, account := arnRegionAccount(al.arn)
	if al.region == "" || !looksLikeRegion(al.region) {
		al.region = region
	}
	if al.account == "" || al.account == "EXAMPLE" {
		al.account = cmp.Or(account, al.account)
	}
	if al.arn == "" && al.region != "" && al.account != "" {
		al.arn = fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", al.region, al.account, al.name)
	}
	id := cmp.Or(al.arn, al.name)
	state := strings.ToUpper(strings.TrimSpace(al.state))
	a := alert.Alert{
		Source:      alert.SourceCloudWatch,
		Key:         "cloudwatch:" + id,
		ID:          id,
		Kind:        alert.KindAlert,
		Org:         al.account,
		Monitor:     cmp.Or(al.name, "(unnamed alarm)"),
		MonitorType: "alarm",
		Message:     al.reason,
		Memo:        al.description,
		Trigger:     "state change " + cmp.Or(al.previous, "?") + " → " + cmp.Or(state, "?"),
		Account:     al.account,
		Region:      al.region,
		Tags:        map[string]string(al.tags),
		Raw:         al.raw,
		Metric: alert.Metric{
			Label:    al.metric,
			Value:    al.value,
			Operator: comparison(al.operator),
		},
		StatusChangedAt: al.at,
	}
	if al.composite {
		a.MonitorType = "composite-alarm"
	}
	if len(a.Tags) == 0 {
		a.Tags = nil
	}
	switch state {
	case "OK":
		a.Status, a.Open, a.ClosedAt = alert.StatusOK, false, al.at
	case "ALARM":
		a.Status, a.Open, a.OpenedAt = alert.StatusCritical, true, al.at
		for k, v := range a.Tags {
			if strings.EqualFold(k, "severity") && strings.EqualFold(v, "warning") {
				a.Status = alert.StatusWarning
			}
		}
	default: // INSUFFICIENT_DATA or anything new
		a.Status, a.Open, a.OpenedAt = alert.StatusUnknown, true, al.at
	}
	// The threshold applies to whichever level the alarm raises.
	if a.Status == alert.StatusWarning {
		a.Metric.Warning = al.threshold
	} else {
		a.Metric.Critical = al.threshold
	}
	for k, v := range a.Tags {
		if strings.EqualFold(k, "service") {
			a.Service = v
		}
	}
	if id := al.dims["InstanceId"]; id != "" {
		a.Host = &alert.Host{ID: id, Name: id}
		if bot.IsInstanceID(id) {
			a.Host.InstanceID = id
		}
	}
	if looksLikeRegion(a.Region) && al.name != "" {
		a.URL = fmt.Sprintf("https://%[1]s.console.aws.amazon.com/cloudwatch/home?region=%[1]s#alarmsV2:alarm/%[2]s",
			a.Region, url.PathEscape(al.name))
	}
	return a
}

// arnRegionAccount extracts region and account from
// arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME.
func arnRegionAccount(arn string) (region, account string) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" {
		return "", ""
	}
	return parts[3], parts[4]
}

var regionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`) })

func looksLikeRegion(s string) bool { return regionRE().MatchString(s) }

// parseAWSTime accepts CloudWatch's "2015-06-03T17:43:27.123+0000" as well
// as RFC 3339; unparseable input gives the zero time.
func parseAWSTime(s string) time.Time {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

var comparisons = map[string]string{
	"GreaterThanThreshold":                     ">",
	"GreaterThanOrEqualToThreshold":            ">=",
	"LessThanThreshold":                        "<",
	"LessThanOrEqualToThreshold":               "<=",
	"LessThanLowerOrGreaterThanUpperThreshold": "outside band",
	"LessThanLowerThreshold":                   "below band",
	"GreaterThanUpperThreshold":                "above band",
}

// comparison maps a ComparisonOperator to a symbol; other text passes
// through unchanged.
func comparison(op string) string {
	if s, ok := comparisons[op]; ok {
		return s
	}
	return op
}

// datapointRE finds the first datapoint in a state reason such as
// "1 out of the last 1 datapoints [1234.0 (06/03/15 17:43:27)] was …".
var datapointRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`datapoints? \[([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?) \(`)
})

func valueFromReason(reason string) *float64 {
	m := datapointRE().FindStringSubmatch(reason)
	if m == nil {
		return nil
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return nil
	}
	return &f
}

// operatorRE reads the comparison from a state reason ("was greater than or
// equal to the threshold", "was not less than the threshold").
var operatorRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`was (?:not )?(greater|less) than( or equal to)? the threshold`)
})

func operatorFromReason(reason string) string {
	m := operatorRE().FindStringSubmatch(reason)
	if m == nil {
		return ""
	}
	op := ">"
	if m[1] == "less" {
		op = "<"
	}
	if m[2] != "" {
		op += "="
	}
	return op
}
