package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// invokeTimeout bounds one local invocation, like a Lambda timeout.
const invokeTimeout = 5 * time.Minute

// invoke feeds one raw Lambda event through the dispatcher Lambda uses and
// prints its result as JSON. Jobs the event enqueues on the in-process
// queue run before it returns. The metrics it recorded are flushed to
// stderr as EMF lines, keeping stdout to the result.
func invoke(ctx context.Context, e env, path string) int {
	raw, err := readEvent(e, path)
	if err != nil {
		fmt.Fprintln(e.stderr, "tokken invoke:", err)
		return exitUsage
	}
	if !json.Valid(raw) {
		fmt.Fprintf(e.stderr, "tokken invoke: %s is not valid JSON\n", path)
		return exitUsage
	}
	a, code := startApp(ctx, e, e.stderr, nil)
	if a == nil {
		return code
	}
	log := a.log
	ctx, cancel := context.WithTimeout(ctx, invokeTimeout)
	defer cancel()

	out, invokeErr := a.dispatcher.Invoke(ctx, raw)
	if err := a.router.Wait(ctx); err != nil {
		log.Warn("slow handlers still running", "err", err)
	}
	if a.local != nil {
		if err := a.local.Idle(ctx); err != nil {
			log.Warn("queued jobs still running", "err", err)
		}
	}
	a.close(ctx)
	a.flushMetrics(ctx)

	if invokeErr != nil {
		fmt.Fprintln(e.stderr, "tokken invoke:", invokeErr)
		return exitFailed
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		fmt.Fprintln(e.stderr, "tokken invoke: encode result:", err)
		return exitFailed
	}
	fmt.Fprintln(e.stdout, string(b))
	return exitOK
}

func readEvent(e env, path string) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(io.LimitReader(e.stdin, 6<<20)) // Lambda's payload limit
		if err != nil {
			return nil, fmt.Errorf("read event from stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read event: %w", err)
	}
	return b, nil
}
