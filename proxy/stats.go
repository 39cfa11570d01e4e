package proxy

import (
	"math"
	"net/http"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/valyala/fasthttp"
)

// fcd's metrics as JSON, for the console's charts: the same registry
// /metrics serves, signed like the rest of /fcd/v1/.
//
//	GET /fcd/v1/stats?prefix=fcd_   every family whose name starts with prefix

// Stat is one metric family.
type Stat struct {
	Name    string       `json:"name"`
	Type    string       `json:"type"`
	Help    string       `json:"help"`
	Samples []StatSample `json:"samples"`
}

// StatSample is one series of a family: a counter or gauge value, or a
// histogram's count, sum and cumulative buckets.
type StatSample struct {
	Labels  map[string]string `json:"labels,omitempty"`
	Value   float64           `json:"value"`
	Sum     float64           `json:"sum,omitempty"`
	Buckets []StatBucket      `json:"buckets,omitempty"`
}

// StatBucket is a cumulative histogram bucket; the +Inf bucket is the
// sample's Value (its count).
type StatBucket struct {
	Le    float64 `json:"le"`
	Count uint64  `json:"count"`
}

// StatsPage is the body of GET /fcd/v1/stats.
type StatsPage struct {
	Stats []Stat `json:"stats"`
}

func (s *Server) stats(ctx *fasthttp.RequestCtx) error {
	families, err := s.gatherer.Gather()
	if err != nil {
		return newError(http.StatusInternalServerError, CodeInternal, "gather metrics: "+err.Error())
	}
	prefix := string(ctx.QueryArgs().Peek("prefix"))
	page := StatsPage{Stats: []Stat{}}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), prefix) {
			continue
		}
		st := Stat{Name: f.GetName(), Type: strings.ToLower(f.GetType().String()), Help: f.GetHelp(), Samples: []StatSample{}}
		for _, m := range f.GetMetric() {
			st.Samples = append(st.Samples, statSample(m))
		}
		page.Stats = append(page.Stats, st)
	}
	return writeJSON(ctx, http.StatusOK, page)
}

func statSample(m *dto.Metric) StatSample {
	var out StatSample
	if len(m.GetLabel()) > 0 {
		out.Labels = make(map[string]string, len(m.GetLabel()))
		for _, l := range m.GetLabel() {
			out.Labels[l.GetName()] = l.GetValue()
		}
	}
	switch {
	case m.Counter != nil:
		out.Value = m.GetCounter().GetValue()
	case m.Gauge != nil:
		out.Value = m.GetGauge().GetValue()
	case m.Untyped != nil:
		out.Value = m.GetUntyped().GetValue()
	case m.Histogram != nil:
		h := m.GetHistogram()
		out.Value, out.Sum = float64(h.GetSampleCount()), h.GetSampleSum()
		for _, b := range h.GetBucket() {
			if !math.IsInf(b.GetUpperBound(), 1) {
				out.Buckets = append(out.Buckets, StatBucket{Le: b.GetUpperBound(), Count: b.GetCumulativeCount()})
			}
		}
	}
	return out
}
