package router

import (
	"context"
	"testing"
)

func TestAfterAckWithoutTransportRunsAtOnce(t *testing.T) {
	ran := false
	AfterAck(context.Background(), func(context.Context) { ran = true })
	if !ran {
		t.Fatal("AfterAck without a transport must run at once")
	}
	// Once a transport has run its work, later calls (a handler still
	// running after a timed-out ack) run at once too.
	ctx, run := WithAfterAck(context.Background(), nil)
	run()
	ran = false
	AfterAck(ctx, func(context.Context) { ran = true })
	if !ran {
		t.Fatal("AfterAck after the transport ran its work must run at once")
	}
}
