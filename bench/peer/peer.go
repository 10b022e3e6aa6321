// Package peer starts and stops the server processes the benchmarks
// measure (tokken, the Bolt app) and knows when each is
// ready: not by sleeping or polling a port, but by reading the line each
// prints once it listens. All of a process's output is copied to a log
// file so a run can be diagnosed afterwards.
package peer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ReadyFunc inspects one line of a process's output (stdout or stderr) and
// returns the address it listens on once the line says so.
type ReadyFunc func(line string) (addr string, ok bool)

// Listening matches the line "listening HOST:PORT" that the Bolt app
// prints.
func Listening(line string) (string, bool) {
	addr, ok := strings.CutPrefix(strings.TrimSpace(line)+" ", "listening ")
	addr = strings.TrimSpace(addr)
	if !ok || addr == "" {
		return "", false
	}
	return addr, true
}

// TokkenServing matches tokken's JSON log line {"msg":"tokken serving",
// "addr":…} written once `tokken serve` listens.
func TokkenServing(line string) (string, bool) {
	if !strings.Contains(line, `"tokken serving"`) {
		return "", false
	}
	var l struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
	}
	if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "tokken serving" || l.Addr == "" {
		return "", false
	}
	return l.Addr, true
}

// Spec describes a process to start.
type Spec struct {
	Name string
	Path string
	Args []string
	// Env is the whole environment of the process (nothing is inherited).
	Env []string
	Dir string
	// Ready recognises the line that says the process listens. Nil means
	// the process is ready once started (Addr stays empty).
	Ready ReadyFunc
	// Log receives all output, from one goroutine; give each process its
	// own. Nil discards it.
	Log io.Writer
}

// Process is a started server.
type Process struct {
	Name string
	// Addr is what Ready returned.
	Addr string
	PID  int
	// Started is when the process was started (just before fork/exec).
	Started time.Time

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid after done
}

// Start starts spec and waits until its Ready line appears, the process
// exits, or timeout passes (then it is killed).
func Start(ctx context.Context, spec Spec, timeout time.Duration) (*Process, error) {
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env, cmd.Dir = spec.Env, spec.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	logw := spec.Log
	if logw == nil {
		logw = io.Discard
	}
	p := &Process{Name: spec.Name, cmd: cmd, done: make(chan struct{})}
	p.Started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p.PID = cmd.Process.Pid
	ready := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		scan(pr, logw, spec.Ready, ready)
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		<-scanned // the log is complete once Done is closed
		close(p.done)
	}()
	if spec.Ready == nil {
		return p, nil
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case addr := <-ready:
		p.Addr = addr
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before it was ready: %v", spec.Name, p.err)
	case <-timer.C:
		_ = p.Stop(0)
		return nil, fmt.Errorf("%s not ready within %s", spec.Name, timeout)
	case <-ctx.Done():
		_ = p.Stop(0)
		return nil, fmt.Errorf("start %s: %w", spec.Name, ctx.Err())
	}
}

// scan copies output lines to logw and reports the first Ready address.
func scan(r io.Reader, logw io.Writer, isReady ReadyFunc, ready chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := isReady == nil
	for sc.Scan() {
		line := sc.Text()
		_, _ = fmt.Fprintln(logw, line)
		if !found {
			if addr, ok := isReady(line); ok {
				found = true
				ready <- addr
			}
		}
	}
	// Drain whatever remains (over-long lines) so the process never blocks
	// on a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit status; valid once Done is closed.
func (p *Process) Err() error { return p.err }

// Stop sends SIGTERM to the process group and waits up to grace for the
// process to exit, then kills the group. It returns the exit status unless
// the process ended because of the signals sent here.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = syscall.Kill(-p.PID, syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		_ = syscall.Kill(-p.PID, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within %s after SIGTERM; killed", p.Name, grace)
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return p.err
}

// PeakRSS is the process's peak resident set size (VmHWM), in bytes.
func (p *Process) PeakRSS() (int64, error) {
	return PeakRSS(p.PID)
}

// PeakRSS reads VmHWM from /proc/<pid>/status, in bytes.
func PeakRSS(pid int) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("peak rss of pid %d: %w", pid, err)
	}
	return ParseVmHWM(data)
}

// ParseVmHWM extracts VmHWM (reported in kB) from /proc/<pid>/status
// contents, in bytes.
func ParseVmHWM(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("malformed VmHWM line %q", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed VmHWM line %q: %w", bytes.TrimSpace(line), err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// TokkenServe is the Spec of `tokken serve` (the binary at path) as the
// benchmarks run it: in its own directory under work with a fresh bbolt
// store, the policies in policyDir, any free loopback port, and nothing
// able to reach AWS (a region so clients build, placeholder credentials,
// every endpoint on a closed loopback port). env adds the Slack settings
// (SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN, SLACK_API_URL, …).
func TokkenServe(path, policyDir, work string, env ...string) (Spec, error) {
	policies, err := filepath.Abs(policyDir)
	if err != nil {
		return Spec{}, fmt.Errorf("policy directory: %w", err)
	}
	dir := filepath.Join(work, "tokken")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Spec{}, fmt.Errorf("tokken directory: %w", err)
	}
	base := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"TOKKEN_ADDR=127.0.0.1:0",
		"TOKKEN_STORE=bolt:" + filepath.Join(dir, "tokken.db"),
		"TOKKEN_POLICY_DIR=" + policies,
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=AKIDBENCH",
		"AWS_SECRET_ACCESS_KEY=bench",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL=http://127.0.0.1:9",
	}
	return Spec{Name: "tokken", Path: path, Args: []string{"serve"}, Dir: dir, Env: append(base, env...), Ready: TokkenServing}, nil
}
