package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/tokken/tokken/bot"
	"github.com/tokken/tokken/handlers/socket"
	"github.com/tokken/tokken/infra/metrics"
)

// shutdownGrace bounds a graceful shutdown.
const shutdownGrace = 20 * time.Second

// serve runs tokken locally until ctx is done (SIGINT/SIGTERM). EMF
// metrics go to stdout every metrics.DefaultFlushInterval and once more
// after shutdown.
func serve(ctx context.Context, e env) int {
	a, code := startApp(ctx, e, e.stdout, nil)
	if a == nil {
		return code
	}
	cfg, log := a.cfg, a.log
	// Metrics outlive the shutdown below, so what the draining jobs record
	// is in the final flush.
	metricsCtx, stopMetrics := context.WithCancel(context.WithoutCancel(ctx))
	metricsDone := make(chan struct{})
	go func() {
		defer close(metricsDone)
		a.metrics.Run(metricsCtx, metrics.DefaultFlushInterval, log)
	}()
	defer func() { stopMetrics(); <-metricsDone }()

	var srv *http.Server
	errc := make(chan error, 2)
	if a.http != nil {
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			a.close(context.Background())
			return startupError(e, &configError{fmt.Errorf("TOKKEN_ADDR=%s: %w", cfg.Addr, err)})
		}
		srv = &http.Server{Handler: a.http, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
		go func() { errc <- srv.Serve(ln) }()
		log.Info("tokken serving", "addr", ln.Addr().String(), "version", a.info.String(), "config", cfg)
		if e.ready != nil {
			e.ready(ln.Addr().String())
		}
	}

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	socketDone := make(chan struct{})
	if cfg.SocketMode() {
		go func() {
			defer close(socketDone)
			h := socket.New(a.router, log)
			if err := h.Run(runCtx, socket.NewClient(cfg.SlackAppToken.Reveal(), cfg.SlackAPIURL)); err != nil {
				errc <- err
			}
		}()
		log.Info("Socket Mode enabled: Slack traffic arrives over the app-level token's WebSocket")
	} else {
		close(socketDone)
	}
	go a.sweepEvery(runCtx, SweepInterval)

	code = exitOK
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve failed", "err", err)
			code = exitFailed
		}
	}
	stopRun()
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if srv != nil {
		if err := srv.Shutdown(shutdown); err != nil {
			log.Warn("shutdown: HTTP server", "err", err)
		}
	}
	<-socketDone
	a.close(shutdown)
	log.Info("stopped")
	return code
}

// sweepEvery enqueues a JobSweep now and every interval until ctx is done.
// The job id is derived from the interval slot, so two processes (or a
// restart) in the same slot enqueue it once.
func (a *app) sweepEvery(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		slot := time.Now().Truncate(interval).Unix()
		if err := a.queue.Enqueue(ctx, bot.Job{ID: fmt.Sprintf("sweep/%d", slot), Kind: JobSweep}); err != nil && ctx.Err() == nil {
			a.log.Error("cannot enqueue the reconcile sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
