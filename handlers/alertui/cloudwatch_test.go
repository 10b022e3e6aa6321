package alertui

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tokken/tokken/bot/alert"
)

func readSNS(t testing.TB, name string) events.SNSEvent {
	t.Helper()
	var ev events.SNSEvent
	if err := json.Unmarshal(readFixture(t, name), &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestParseCloudWatchSNS(t *testing.T) {
	at := time.Date(2015, 6, 3, 17, 43, 27, 123e6, time.UTC)
	reason := "Threshold Crossed: 1 out of the last 1 datapoints [1234.0 (06/03/15 17:43:27)] was greater than the threshold (0.0) (minimum 1 datapoint for OK -> ALARM transition)."
	tests := []struct {
		file string
		want alert.Alert
	}{
		{"sns-alarm-single-metric.json", alert.Alert{
			Source: alert.SourceCloudWatch, Key: "cloudwatch:arn:aws:cloudwatch:REGION:ACCOUNT_NUMBER:alarm:EXAMPLE",
			ID: "arn:aws:cloudwatch:REGION:ACCOUNT_NUMBER:alarm:EXAMPLE", Kind: alert.KindAlert, Org: "123456789012",
			Status: alert.StatusCritical, Open: true, Monitor: "EXAMPLE", MonitorType: "alarm",
			Host:    &alert.Host{ID: "TestInstance", Name: "TestInstance"},
			Metric:  alert.Metric{Label: "NetworkOut", Value: f64(1234), Operator: ">", Critical: f64(0)},
			Message: reason, Memo: "EXAMPLE", Trigger: "state change INSUFFICIENT_DATA → ALARM",
			OpenedAt: at, StatusChangedAt: at, Account: "123456789012", Region: "REGION",
		}},
		{"sns-alarm-multiple-metrics.json", alert.Alert{
			Source: alert.SourceCloudWatch, Key: "cloudwatch:arn:aws:cloudwatch:REGION:ACCOUNT_NUMBER:alarm:EXAMPLE",
			ID: "arn:aws:cloudwatch:REGION:ACCOUNT_NUMBER:alarm:EXAMPLE", Kind: alert.KindAlert, Org: "ACCOUNT_NUMBER",
			Status: alert.StatusCritical, Open: true, Monitor: "EXAMPLE", MonitorType: "alarm",
			Host:    &alert.Host{ID: "TestInstance", Name: "TestInstance"},
			Metric:  alert.Metric{Label: "Expression1", Value: f64(1234), Operator: ">", Critical: f64(0)},
			Message: reason, Memo: "EXAMPLE", Trigger: "state change INSUFFICIENT_DATA → ALARM",
			OpenedAt: at, StatusChangedAt: at, Account: "ACCOUNT_NUMBER", Region: "REGION",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			evs, err := ParseCloudWatchSNS(readSNS(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0].Alert == nil {
				t.Fatalf("events = %+v", evs)
			}
			got := *evs[0].Alert
			if len(got.Raw) == 0 || got.Raw[0] != '{' {
				t.Error("alarm JSON not kept as raw")
			}
			got.Raw = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("alert mismatch\n got %s\nwant %s", dump(got), dump(tt.want))
			}
		})
	}
}

func TestParseCloudWatchSNSRealAlarm(t *testing.T) {
	// A message as CloudWatch sends it: region long name, real ARN, an
	// instance id, and tags asking for warning severity.
	msg := `{"AlarmName":"web-cpu","AlarmDescription":"CPU > 80\nsee <runbook>","AWSAccountId":"123456789012",
	"NewStateValue":"ALARM","NewStateReason":"Threshold Crossed: 2 out of the last 2 datapoints [85.1 (03/06/24 05:00:00), 83.0 (03/06/24 04:55:00)] was greater than or equal to the threshold (80.0).",
	"StateChangeTime":"2024-06-03T05:00:00.000+0000","Region":"Asia Pacific (Tokyo)","AlarmArn":"arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:web-cpu",
	"OldStateValue":"OK","AlarmTags":{"severity":"warning","Service":"shop","bad":{"x":1}},
	"Trigger":{"MetricName":"CPUUtilization","Namespace":"AWS/EC2","Dimensions":[{"name":"InstanceId","value":"i-0123456789abcdef0"}],
	"Period":300.0,"EvaluationPeriods":2,"ComparisonOperator":"GreaterThanOrEqualToThreshold","Threshold":80.0}}`
	ev := events.SNSEvent{Records: []events.SNSEventRecord{{SNS: events.SNSEntity{MessageID: "m1", Message: msg}}}}
	evs, err := ParseCloudWatchSNS(ev)
	if err != nil {
		t.Fatal(err)
	}
	a := evs[0].Alert
	if a.Status != alert.StatusWarning || a.Region != "ap-northeast-1" || a.Service != "shop" {
		t.Errorf("status/region/service = %q/%q/%q", a.Status, a.Region, a.Service)
	}
	if a.InstanceID() != "i-0123456789abcdef0" || a.Host.InstanceID != "i-0123456789abcdef0" {
		t.Errorf("instance = %q", a.InstanceID())
	}
	if a.Metric.Operator != ">=" || a.Metric.Warning == nil || *a.Metric.Warning != 80 || a.Metric.Critical != nil || *a.Metric.Value != 85.1 {
		t.Errorf("metric = %+v", a.Metric)
	}
	wantURL := "https://ap-northeast-1.console.aws.amazon.com/cloudwatch/home?region=ap-northeast-1#alarmsV2:alarm/web-cpu"
	if a.URL != wantURL {
		t.Errorf("URL = %q", a.URL)
	}
	if _, ok := a.Tags["bad"]; ok {
		t.Error("non-string tag kept")
	}
}

func TestParseCloudWatchSNSNotAlarm(t *testing.T) {
	evs, err := ParseCloudWatchSNS(readSNS(t, "sns-not-alarm.json"))
	if err != nil {
		t.Fatal(err)
	}
	n := evs[0].Notice
	if n == nil || n.Kind != alert.KindUnknown || n.Message != "Hello from SNS!" || n.Title != "SNS message: TestInvoke" ||
		n.Key != "cloudwatch:sns:95df01b4-ee98-5cb9-9903-4c221d41eb5e" {
		t.Errorf("notice = %+v", n)
	}
	// A JSON message that is not an alarm is a notice too.
	ev := events.SNSEvent{Records: []events.SNSEventRecord{{SNS: events.SNSEntity{Message: `{"hello":"world"}`}}}}
	evs, err = ParseCloudWatchSNS(ev)
	if err != nil || evs[0].Notice == nil || !strings.HasPrefix(evs[0].Key(), "cloudwatch:sns:") {
		t.Errorf("json non-alarm: %+v, %v", evs, err)
	}
}

func TestParseCloudWatchSNSErrors(t *testing.T) {
	tests := []struct {
		name string
		ev   events.SNSEvent
		want string
	}{
		{"no records", events.SNSEvent{}, "no records"},
		{"broken alarm JSON", events.SNSEvent{Records: []events.SNSEventRecord{{SNS: events.SNSEntity{Message: `{"AlarmName":`}}}}, "sns record 0"},
		{"threshold not number", events.SNSEvent{Records: []events.SNSEventRecord{{SNS: events.SNSEntity{
			Message: `{"AlarmName":"a","Trigger":{"Threshold":"high"}}`}}}}, "Trigger.Threshold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCloudWatchSNS(tt.ev)
			if err == nil || !errors.Is(err, ErrBadPayload) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want mention of %q", err, tt.want)
			}
		})
	}
}

func TestParseCloudWatchEventBridge(t *testing.T) {
	arn := "arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:ServerCpuTooHigh"
	url := "https://ap-northeast-1.console.aws.amazon.com/cloudwatch/home?region=ap-northeast-1#alarmsV2:alarm/ServerCpuTooHigh"
	host := &alert.Host{ID: "i-0123456789abcdef0", Name: "i-0123456789abcdef0", InstanceID: "i-0123456789abcdef0"}
	alarmAt := time.Date(2024, 6, 3, 5, 0, 0, 989e6, time.UTC)
	okAt := time.Date(2024, 6, 3, 5, 15, 0, 989e6, time.UTC)
	tests := []struct {
		file string
		want alert.Alert
	}{
		{"eventbridge-alarm.json", alert.Alert{
			Source: alert.SourceCloudWatch, Key: "cloudwatch:" + arn, ID: arn, Kind: alert.KindAlert, Org: "123456789012",
			Status: alert.StatusCritical, Open: true, Monitor: "ServerCpuTooHigh", MonitorType: "alarm", Host: host, Service: "shop",
			Metric:  alert.Metric{Label: "CPUUtilization", Value: f64(99.50160229693434), Operator: ">=", Critical: f64(50)},
			Message: "Threshold Crossed: 1 out of the last 1 datapoints [99.50160229693434 (03/06/24 04:59:00)] was greater than or equal to the threshold (50.0) (minimum 1 datapoint for OK -> ALARM transition).",
			Memo:    "Goes into alarm when server CPU utilization is too high!", Trigger: "state change OK → ALARM",
			URL: url, OpenedAt: alarmAt, StatusChangedAt: alarmAt, Account: "123456789012", Region: "ap-northeast-1",
			Tags: map[string]string{"Environment": "prod", "Service": "shop"},
		}},
		{"eventbridge-ok.json", alert.Alert{
			Source: alert.SourceCloudWatch, Key: "cloudwatch:" + arn, ID: arn, Kind: alert.KindAlert, Org: "123456789012",
			Status: alert.StatusOK, Open: false, Monitor: "ServerCpuTooHigh", MonitorType: "alarm", Host: host,
			Metric:  alert.Metric{Label: "CPUUtilization", Value: f64(12.5), Operator: ">=", Critical: f64(50)},
			Message: "Threshold Crossed: 1 out of the last 1 datapoints [12.5 (03/06/24 05:10:00)] was not greater than or equal to the threshold (50.0) (minimum 1 datapoint for ALARM -> OK transition).",
			Memo:    "Goes into alarm when server CPU utilization is too high!", Trigger: "state change ALARM → OK",
			URL: url, ClosedAt: okAt, StatusChangedAt: okAt, Account: "123456789012", Region: "ap-northeast-1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ev, err := ParseCloudWatchEventBridge(readFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Alert == nil {
				t.Fatalf("event = %+v", ev)
			}
			got := *ev.Alert
			got.Raw = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("alert mismatch\n got %s\nwant %s", dump(got), dump(tt.want))
			}
		})
	}
}

func TestParseCloudWatchEventBridgeComposite(t *testing.T) {
	ev, err := ParseCloudWatchEventBridge(readFixture(t, "eventbridge-composite.json"))
	if err != nil {
		t.Fatal(err)
	}
	a := ev.Alert
	if a.MonitorType != "composite-alarm" || a.Host != nil || !a.Metric.IsZero() || a.Status != alert.StatusCritical ||
		a.Key != "cloudwatch:arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServiceAggregatedAlarm" {
		t.Errorf("composite = %s", dump(*a))
	}
}

func TestParseCloudWatchEventBridgeOther(t *testing.T) {
	ev, err := ParseCloudWatchEventBridge(readFixture(t, "eventbridge-other.json"))
	if err != nil {
		t.Fatal(err)
	}
	n := ev.Notice
	if n == nil || n.Kind != alert.KindUnknown || n.Type != "EC2 Instance State-change Notification" ||
		n.Key != "cloudwatch:event:7bf73129-1428-4cd3-a780-95db273d1602" || n.Org != "123456789012" {
		t.Errorf("notice = %+v", n)
	}
}

func TestParseCloudWatchEventBridgeErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"not json", `nope`, "expected a JSON object"},
		{"detail missing", `{"detail-type":"CloudWatch Alarm State Change"}`, "detail: empty body"},
		{"detail not object", `{"detail-type":"CloudWatch Alarm State Change","detail":[1]}`, "expected a JSON object"},
		{"no alarm name", `{"detail-type":"CloudWatch Alarm State Change","detail":{"state":{"value":"ALARM"}}}`, "without detail.alarmName"},
		{"resources not array", `{"detail-type":"x","resources":"arn"}`, "field resources"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCloudWatchEventBridge(json.RawMessage(tt.body))
			if err == nil || !errors.Is(err, ErrBadPayload) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want mention of %q", err, tt.want)
			}
		})
	}
}

func TestParseAWSTime(t *testing.T) {
	want := time.Date(2015, 6, 3, 17, 43, 27, 123e6, time.UTC)
	for _, s := range []string{"2015-06-03T17:43:27.123+0000", "2015-06-03T17:43:27.123Z", "2015-06-04T02:43:27.123+09:00"} {
		if got := parseAWSTime(s); !got.Equal(want) {
			t.Errorf("parseAWSTime(%q) = %v", s, got)
		}
	}
	if !parseAWSTime("06/03/15").IsZero() {
		t.Error("garbage parsed")
	}
}

func FuzzParseCloudWatchEventBridge(f *testing.F) {
	seedFixtures(f, "eventbridge-*.json")
	f.Add([]byte(`{"detail-type":"CloudWatch Alarm State Change","detail":{"alarmName":"a","state":{"value":"ALARM","reasonData":"{\"recentDatapoints\":[1,\"x\"]}"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseCloudWatchEventBridge(body)
		if rejected(t, err) {
			return
		}
		checkEvent(t, ev)
	})
}

// FuzzParseCloudWatchSNS fuzzes the alarm JSON inside Sns.Message, the part
// CloudWatch writes (the SNS envelope is decoded by the Lambda runtime).
func FuzzParseCloudWatchSNS(f *testing.F) {
	for _, name := range []string{"sns-alarm-single-metric.json", "sns-alarm-multiple-metrics.json", "sns-not-alarm.json"} {
		f.Add(readSNS(f, name).Records[0].SNS.Message)
	}
	f.Add(`{"AlarmName":"a","NewStateValue":"OK","StateChangeTime":"x","AlarmTags":[],"Trigger":{"Metrics":[{"ReturnData":true}]}}`)
	f.Fuzz(func(t *testing.T, msg string) {
		evs, err := ParseCloudWatchSNS(events.SNSEvent{Records: []events.SNSEventRecord{{SNS: events.SNSEntity{MessageID: "m", Message: msg}}}})
		if rejected(t, err) {
			return
		}
		if len(evs) != 1 {
			t.Fatalf("%d events for 1 record", len(evs))
		}
		checkEvent(t, evs[0])
	})
}
