// Package ddblocal runs DynamoDB Local, AWS's DynamoDB emulator, for tests,
// so the DynamoDB store is tested against a real DynamoDB wire protocol and
// condition-expression engine instead of a mock.
//
// The emulator is a Java program. scripts/install-test-deps.sh installs a
// JRE where java is missing and unpacks the jar from the pinned npm package
// amplify-dynamodb-simulator into <repo>/.tools/dynamodb-local (or
// $DYNAMODB_LOCAL_DIR). When either is missing, Require skips the test, or
// fails it when $CI or $TOKKEN_REQUIRE_DYNAMODB_LOCAL is set, so a missing
// dependency never passes silently in CI.
//
// Share one Instance across a test binary with a Shared, which starts it
// when a test first needs it, and stop it in TestMain:
//
//	var local ddblocal.Shared
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		local.Stop()
//		os.Exit(code)
//	}
//
//	func TestX(t *testing.T) {
//		client := local.Require(t).Client()
//		...
//	}
package ddblocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
)

// ErrUnavailable matches the error Start returns when java or the DynamoDB
// Local jar is missing: a machine set-up problem, not a test failure.
var ErrUnavailable = errors.New("DynamoDB Local is not installed; run scripts/install-test-deps.sh")

// StartTimeout bounds Start when its context has no deadline. The jar is
// usually ready in 2-4 s; a loaded CI machine may need much longer.
const StartTimeout = 60 * time.Second

// Region is the region of the clients Client returns. DynamoDB Local runs
// with -sharedDb, so any region and credentials see the same tables.
const Region = "us-east-1"

// Instance is one running DynamoDB Local process.
type Instance struct {
	endpoint string
	cmd      *exec.Cmd
	output   *tailBuffer
	exited   chan struct{} // closed when the process has been reaped
	waitErr  error         // cmd.Wait's result, readable once exited is closed
	stopOnce sync.Once
}

// Dir returns the directory holding DynamoDBLocal.jar: $DYNAMODB_LOCAL_DIR,
// or .tools/dynamodb-local in the module root found by walking up from the
// working directory to go.mod.
func Dir() (string, error) {
	if dir := os.Getenv("DYNAMODB_LOCAL_DIR"); dir != "" {
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find DynamoDB Local: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".tools", "dynamodb-local"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find DynamoDB Local: no go.mod above %s; set DYNAMODB_LOCAL_DIR", wd)
		}
		dir = parent
	}
}

// Start launches DynamoDB Local in memory on a free loopback port and
// returns once it answers ListTables, or when ctx ends (StartTimeout if ctx
// has no deadline). The process outlives ctx: call Stop.
func Start(ctx context.Context) (*Instance, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("java not found on PATH: %w", ErrUnavailable)
	}
	jar := filepath.Join(dir, "DynamoDBLocal.jar")
	if _, err := os.Stat(jar); err != nil {
		return nil, fmt.Errorf("%s missing: %w", jar, ErrUnavailable)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, StartTimeout)
		defer cancel()
	}

	// The port is free when chosen but another process may take it before
	// the JVM binds it; the JVM then exits at once and we try another.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		inst, err := launch(ctx, java, dir, jar)
		if err == nil {
			return inst, nil
		}
		if !errors.Is(err, errExitedEarly) || attempt == attempts || ctx.Err() != nil {
			return nil, err
		}
	}
}

// errExitedEarly marks a process that died before it became ready.
var errExitedEarly = errors.New("DynamoDB Local exited before it was ready")

func launch(ctx context.Context, java, dir, jar string) (*Instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("start DynamoDB Local: %w", err)
	}
	cmd := exec.Command(java,
		"-Djava.library.path="+filepath.Join(dir, "DynamoDBLocal_lib"),
		"-jar", jar,
		"-inMemory", "-sharedDb", "-disableTelemetry",
		"-port", strconv.Itoa(port),
	)
	cmd.Dir = dir
	out := &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start DynamoDB Local: %w", err)
	}
	inst := &Instance{
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		cmd:      cmd,
		output:   out,
		exited:   make(chan struct{}),
	}
	go func() {
		inst.waitErr = cmd.Wait()
		close(inst.exited)
	}()
	if err := inst.waitReady(ctx); err != nil {
		inst.Stop()
		return nil, err
	}
	return inst, nil
}

// waitReady polls ListTables until it succeeds, the process exits or ctx ends.
func (i *Instance) waitReady(ctx context.Context) error {
	client := i.Client()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := client.ListTables(callCtx, &dynamodb.ListTablesInput{}, func(o *dynamodb.Options) {
			o.RetryMaxAttempts = 1 // this loop is the retry
		})
		cancel()
		if err == nil {
			return nil
		}
		// An API error means the server is up and refused us: waiting
		// will not help.
		if apiErr := smithy.APIError(nil); errors.As(err, &apiErr) {
			return fmt.Errorf("DynamoDB Local at %s refused ListTables: %w", i.endpoint, err)
		}
		select {
		case <-i.exited:
			return fmt.Errorf("%w (%v); output:\n%s", errExitedEarly, i.waitErr, i.output)
		case <-ctx.Done():
			return fmt.Errorf("DynamoDB Local at %s not ready: %w (last error: %v); output:\n%s",
				i.endpoint, ctx.Err(), err, i.output)
		case <-tick.C:
		}
	}
}

// Endpoint returns the instance's base URL, e.g. "http://127.0.0.1:41234",
// for AWS_ENDPOINT_URL_DYNAMODB or BaseEndpoint.
func (i *Instance) Endpoint() string { return i.endpoint }

// Client returns a DynamoDB client for the instance: static dummy
// credentials, Region, and the instance's endpoint. It ignores the AWS
// environment on purpose, so a developer's profile can never point a test
// at a real account.
func (i *Instance) Client() *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region: Region,
		// DynamoDB Local rejects access keys that are not alphanumeric.
		Credentials:  credentials.NewStaticCredentialsProvider("tokkentest", "tokkentest", ""),
		BaseEndpoint: aws.String(i.endpoint),
	})
}

// Stop kills the process and everything it started, and waits for it to
// exit. It is safe to call more than once.
func (i *Instance) Stop() {
	i.stopOnce.Do(func() {
		select {
		case <-i.exited:
			return
		default:
		}
		terminate(i.cmd)
		select {
		case <-i.exited:
		case <-time.After(5 * time.Second):
			kill(i.cmd)
			<-i.exited
		}
	})
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Shared is one Instance for a whole test binary, started by the first test
// that needs it. The zero value is ready to use; TestMain calls Stop after
// the tests have run.
type Shared struct {
	once sync.Once
	inst *Instance
	err  error // why the instance could not start
}

// Require returns the shared instance, starting it on first use. If it
// cannot start, Require skips the test when DynamoDB Local is merely not
// installed on a developer's machine, and fails it in CI (or with
// TOKKEN_REQUIRE_DYNAMODB_LOCAL set) or when it is installed but broken.
func (s *Shared) Require(tb testing.TB) *Instance {
	tb.Helper()
	s.once.Do(func() {
		// Not tb.Context(): the instance outlives the first test.
		s.inst, s.err = Start(context.Background())
	})
	if s.err == nil {
		return s.inst
	}
	if errors.Is(s.err, ErrUnavailable) && !required() {
		tb.Skipf("skipping: %v (set CI or TOKKEN_REQUIRE_DYNAMODB_LOCAL to make this a failure)", s.err)
	}
	tb.Fatalf("DynamoDB Local: %v", s.err)
	return nil
}

// Stop stops the shared instance, if it started. Later Require calls fail.
func (s *Shared) Stop() {
	s.once.Do(func() { s.err = errors.New("DynamoDB Local: Require called after Stop") })
	if s.inst != nil {
		s.inst.Stop()
	}
}

// required reports whether a missing DynamoDB Local must fail the tests.
func required() bool {
	return os.Getenv("CI") != "" || os.Getenv("TOKKEN_REQUIRE_DYNAMODB_LOCAL") != ""
}

// tailBuffer keeps the last max bytes written to it, for error messages. The
// process writes it from os/exec's copying goroutine.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = bytes.Clone(b.buf[over:])
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
