package proxy

import (
	"fmt"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestStatusLogKeepsTheLast(t *testing.T) {
	var l statusLog
	for i := range statusesKept + 2 {
		l.put(fmt.Sprint("r", i), 200+i%3)
	}
	got := l.statuses()
	if len(got) != statusesKept {
		t.Errorf("kept: got %d, want %d", len(got), statusesKept)
	}
	if _, ok := got["r0"]; ok {
		t.Error("r0: got kept, want overwritten by a later request")
	}
	if s := got[fmt.Sprint("r", statusesKept+1)]; s != 200+(statusesKept+1)%3 {
		t.Errorf("last: got %d, want %d", s, 200+(statusesKept+1)%3)
	}
}

// respondedLease is a fakeLease that notes FirstResponse calls.
type respondedLease struct {
	fakeLease
	arrived []time.Time
}

func (l *respondedLease) FirstResponse(arrived time.Time) { l.arrived = append(l.arrived, arrived) }

func TestForwardedRecordsStatusAndFirstResponse(t *testing.T) {
	s := New(Options{})
	var ctx fasthttp.RequestCtx
	ctx.Response.SetStatusCode(fasthttp.StatusCreated)
	lease := &respondedLease{}
	s.forwarded(&ctx, &exchange{rid: "r1", lease: lease})
	if got := s.statuses.statuses()["r1"]; got != fasthttp.StatusCreated {
		t.Errorf("status of r1: got %d, want %d", got, fasthttp.StatusCreated)
	}
	if len(lease.arrived) != 1 || !lease.arrived[0].Equal(ctx.Time()) {
		t.Errorf("FirstResponse calls: got %v, want one with the request's arrival %v", lease.arrived, ctx.Time())
	}
	// A lease without FirstResponse (a plain one) only gets its status kept.
	ctx.Response.SetStatusCode(fasthttp.StatusNotFound)
	s.forwarded(&ctx, &exchange{rid: "r2", lease: &fakeLease{}})
	if got := s.statuses.statuses()["r2"]; got != fasthttp.StatusNotFound {
		t.Errorf("status of r2: got %d, want %d", got, fasthttp.StatusNotFound)
	}
}

func BenchmarkForwarded(b *testing.B) {
	s := New(Options{})
	var ctx fasthttp.RequestCtx
	x := &exchange{rid: "r1", lease: &fakeLease{}}
	b.ReportAllocs()
	for b.Loop() {
		s.forwarded(&ctx, x)
	}
}
