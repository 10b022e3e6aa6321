package peer

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestReadyMatchers(t *testing.T) {
	tests := []struct {
		name   string
		f      ReadyFunc
		line   string
		want   string
		wantOK bool
	}{
		{"listening", Listening, "listening 127.0.0.1:4100", "127.0.0.1:4100", true},
		{"listening, other line", Listening, "starting up", "", false},
		{"listening, no address", Listening, "listening ", "", false},
		{"tokken", TokkenServing, `{"time":"x","level":"INFO","msg":"tokken serving","app":"tokken","addr":"127.0.0.1:38211"}`, "127.0.0.1:38211", true},
		{"tokken, other message", TokkenServing, `{"msg":"tokken serving soon","addr":"127.0.0.1:1"}`, "", false},
		{"tokken, not JSON", TokkenServing, `tokken serving" on 127.0.0.1:1`, "", false},
		{"tokken, no addr", TokkenServing, `{"msg":"tokken serving"}`, "", false},
	}
	for _, tt := range tests {
		got, ok := tt.f(tt.line)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("%s: got (%q, %v), want (%q, %v)", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseVmHWM(t *testing.T) {
	tests := []struct {
		status  string
		want    int64
		wantErr bool
	}{
		{"Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n", 1234 << 10, false},
		{"Name:\tx\n", 0, true},
		{"VmHWM:\t 12 MB\n", 0, true},
		{"VmHWM:\t x kB\n", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseVmHWM([]byte(tt.status))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseVmHWM(%q) = %d, %v; want %d, err %v", tt.status, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestStartStop(t *testing.T) {
	var log strings.Builder
	p, err := Start(context.Background(), Spec{
		Name: "sh", Path: "/bin/sh", Args: []string{"-c", "echo hello; echo listening 127.0.0.1:9; exec sleep 30"},
		Ready: Listening, Log: &log,
	}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p.Addr != "127.0.0.1:9" || p.PID <= 0 {
		t.Errorf("addr %q pid %d", p.Addr, p.PID)
	}
	if rss, err := p.PeakRSS(); err != nil || rss <= 0 {
		t.Errorf("PeakRSS = %d, %v", rss, err)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
	<-p.Done()
	if !strings.Contains(log.String(), "hello\n") {
		t.Errorf("log %q lacks the output", log.String())
	}
}

func TestStartFailures(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		timeout time.Duration
		want    string
	}{
		{"exits first", []string{"-c", "echo oops; exit 3"}, 10 * time.Second, "exited before it was ready"},
		{"never ready", []string{"-c", "exec sleep 30"}, 100 * time.Millisecond, "not ready within"},
	}
	for _, tt := range tests {
		_, err := Start(context.Background(), Spec{Name: "sh", Path: "/bin/sh", Args: tt.args, Ready: Listening}, tt.timeout)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestTBRunsCleanupsLastFirst(t *testing.T) {
	tb := NewTB()
	var order []int
	tb.Helper()
	tb.Cleanup(func() { order = append(order, 1) })
	tb.Cleanup(func() { order = append(order, 2) })
	tb.Close()
	tb.Close() // a second Close runs nothing again
	if len(order) != 2 || order[0] != 2 || order[1] != 1 {
		t.Errorf("cleanup order %v, want [2 1]", order)
	}
}
