// Command fcd is the function host daemon: it serves the Function Compute
// 3.0 API and runs custom-container functions on containerd.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	goruntime "runtime"
	"syscall"

	"github.com/sirupsen/logrus"
)

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fcd:", err)
		os.Exit(2)
	}
	if cfg.GOMAXPROCS > 0 {
		goruntime.GOMAXPROCS(cfg.GOMAXPROCS)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	// The embedded registry (distribution) and containerd's client log
	// through logrus's standard logger: keep their per-request info lines
	// out unless fcd itself is at debug level.
	if cfg.LogLevel > slog.LevelDebug {
		logrus.SetLevel(logrus.WarnLevel)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// The first signal starts a graceful shutdown; a second one gets
		// the default action and ends fcd at once.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, cfg, log); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("fcd stopped", "error", err)
		os.Exit(1)
	}
}
