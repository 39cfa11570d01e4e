package main

import (
	"context"
	"io"
	stdlog "log"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/fcd-dev/fcd/examples/images"
)

// silentListener accepts connections and, while silent, never answers
// them: a registry that took the connection and hung.
type silentListener struct {
	net.Listener
	silent   atomic.Bool
	accepted atomic.Int32

	mu   sync.Mutex
	live []net.Conn // answered
	held []net.Conn // never answered
}

func (l *silentListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.accepted.Add(1)
		l.mu.Lock()
		if !l.silent.Load() {
			l.live = append(l.live, c)
			l.mu.Unlock()
			return c, nil
		}
		l.held = append(l.held, c)
		l.mu.Unlock()
	}
}

// hang makes the registry silent, as one that hung: the connections it
// answered on are closed, so that no client's idle connection still gets
// answers, and new ones are never answered.
func (l *silentListener) hang() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.silent.Store(true)
	for _, c := range l.live {
		c.Close()
	}
	l.live = nil
}

func (l *silentListener) Close() error {
	l.mu.Lock()
	for _, c := range l.held {
		c.Close()
	}
	l.mu.Unlock()
	return l.Listener.Close()
}

// TestSilentRegistry checks that a registry that accepts the connection
// and never answers fails the cold start with FunctionNotStarted naming
// the registry, instead of holding the request, and that the next request
// starts afresh and runs once the registry answers.
func TestSilentRegistry(t *testing.T) {
	requireRuntime(t)
	s := httptest.NewUnstartedServer(registry.New(registry.Logger(stdlog.New(io.Discard, "", 0))))
	ln := &silentListener{Listener: s.Listener}
	s.Listener = ln
	s.Start()
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "http://")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	img, err := images.Build(ctx, images.Echo)
	if err != nil {
		t.Fatal(err)
	}
	ref := images.Ref(host, images.Echo)
	if err := images.Push(ctx, ref, img, nil); err != nil {
		t.Fatal(err)
	}

	d := startDaemonWith(t, t.TempDir(), []string{"-name", "fcdpull", "-subnet", "10.94.0.0/16", "-registry-timeout", "500ms"}, true)
	c := sdkClient(t, d, d.creds.AccessKeySecret)
	createFunction(t, c, "silent", ref, 1)

	ln.hang()
	before := ln.accepted.Load()
	_, _, err = invoke(c, "silent", "x")
	if code, status := sdkCode(err); code != "FunctionNotStarted" || status != 412 || !strings.Contains(err.Error(), host) {
		t.Fatalf("invoke with a silent registry: got %q/%d (%v), want FunctionNotStarted/412 naming %s", code, status, err, host)
	}
	if ln.accepted.Load() == before {
		t.Fatal("the registry saw no connection")
	}
	// The function has acceleration (the default): its start looks the
	// image up first, and fails there, without waiting for the pull too.
	if !strings.Contains(err.Error(), "look up") {
		t.Errorf("invoke with a silent registry: %v, want the failed look-up of the accelerated image", err)
	}

	ln.silent.Store(false)
	_, out, err := invoke(c, "silent", "again")
	if err != nil {
		t.Fatalf("invoke once the registry answers: %v", err)
	}
	if out != "again" {
		t.Errorf("invoke: got %q, want %q", out, "again")
	}
}
