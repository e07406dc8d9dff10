package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roost-rt/roost/hub"
	"github.com/roost-rt/roost/hub/httpapi"
)

// metricNames is every series family /metrics must expose, by type.
var metricNames = map[string]string{
	"roost_connections":              "gauge",
	"roost_users":                    "gauge",
	"roost_channels":                 "gauge",
	"roost_subscriptions":            "gauge",
	"roost_messages_in_total":        "counter",
	"roost_messages_out_total":       "counter",
	"roost_bytes_in_total":           "counter",
	"roost_bytes_out_total":          "counter",
	"roost_published_total":          "counter",
	"roost_deliveries_total":         "counter",
	"roost_write_syscalls_total":     "counter",
	"roost_disconnects_total":        "counter",
	"roost_evictions_total":          "counter",
	"roost_write_errors_total":       "counter",
	"roost_queue_overflows_total":    "counter",
	"roost_rate_limited_total":       "counter",
	"roost_broker_errors_total":      "counter",
	"roost_handshake_failures_total": "counter",
	"roost_fanout_duration_seconds":  "histogram",
	"roost_fanout_recipients":        "histogram",
	"go_goroutines":                  "gauge",
	"go_memstats_heap_alloc_bytes":   "gauge",
	"process_open_fds":               "gauge",
	"process_cpu_seconds_total":      "counter",
}

// value returns the value of one series from g: a counter or gauge value,
// or a histogram's sample count. It fails the test if the series is absent.
func value(tb testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	tb.Helper()
	mfs, err := g.Gather()
	require.NoError(tb, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	tb.Fatalf("no series %s%v", name, labels)
	return 0
}

func hasLabel(m *dto.Metric, name, val string) bool {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name && lp.GetValue() == val {
			return true
		}
	}
	return false
}

func TestMetricsExposition(t *testing.T) {
	e := start(t, httpapi.Config{APIKey: "k"}, hub.Config{})
	g := e.m.Gatherer()
	c := e.dial("u1")
	c.subscribe("news")
	assert.Zero(t, value(t, g, "roost_published_total"))

	r := e.do("POST", "/api/publish", `{"channel":"news","data":"x"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, `{"channel":"news","data":"x"}`, c.next())

	// A plain GET on /ws is a refused upgrade; a limit outside the hub too.
	require.Equal(t, http.StatusBadRequest, e.doHeader("GET", "/ws", "", nil).status)
	e.m.LimitRefused("conn_rate_per_ip")

	r = e.doHeader("GET", "/metrics", "", nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Contains(t, r.header.Get("Content-Type"), "text/plain")
	for name, typ := range metricNames {
		assert.Contains(t, r.body, "# TYPE "+name+" "+typ+"\n")
	}
	assert.Contains(t, r.body, "roost_published_total 1\n")
	assert.Contains(t, r.body, `roost_disconnects_total{reason="slow_consumer"} 0`)

	assert.EqualValues(t, 1, value(t, g, "roost_published_total"))
	assert.EqualValues(t, 1, value(t, g, "roost_deliveries_total"))
	assert.EqualValues(t, 1, value(t, g, "roost_connections"))
	assert.EqualValues(t, 1, value(t, g, "roost_users"))
	assert.EqualValues(t, 1, value(t, g, "roost_channels"))
	assert.EqualValues(t, 1, value(t, g, "roost_subscriptions"))
	assert.GreaterOrEqual(t, value(t, g, "roost_messages_in_total"), 1.0)
	assert.GreaterOrEqual(t, value(t, g, "roost_bytes_out_total"), 1.0)
	assert.EqualValues(t, 1, value(t, g, "roost_fanout_recipients"), "one fan-out observed")
	assert.EqualValues(t, 1, value(t, g, "roost_fanout_duration_seconds"))
	assert.EqualValues(t, 1, value(t, g, "roost_handshake_failures_total", "reason", "bad_request"))
	assert.EqualValues(t, 1, value(t, g, "roost_handshake_failures_total", "reason", "conn_rate_per_ip"))
	assert.Zero(t, value(t, g, "roost_handshake_failures_total", "reason", "max_header_bytes"))

	r = e.do("POST", "/api/disconnect", `{"user":"u1"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, 4502, c.closeCode())
	eventually(t, 5*time.Second, func() bool {
		return value(t, g, "roost_disconnects_total", "reason", "disconnected") == 1
	}, "disconnect counted")
	assert.Zero(t, value(t, g, "roost_connections"))
}

// TestHandshakeReasonsMatchHub keeps the reasons exported at zero in step
// with the ones the hub counts.
func TestHandshakeReasonsMatchHub(t *testing.T) {
	e := start(t, httpapi.Config{}, hub.Config{})
	var hubReasons []string
	for r := range e.h.Stats().HandshakeFailed {
		hubReasons = append(hubReasons, r)
	}
	sort.Strings(hubReasons)
	require.NotEmpty(t, hubReasons)
	for _, r := range hubReasons {
		assert.Zero(t, value(t, e.m.Gatherer(), "roost_handshake_failures_total", "reason", r), r)
	}
	for _, r := range hub.Reasons() {
		assert.Zero(t, value(t, e.m.Gatherer(), "roost_disconnects_total", "reason", r.String()), r.String())
	}
}

func TestMetricsRegistration(t *testing.T) {
	t.Run("New twice with one Metrics", func(t *testing.T) {
		m := httpapi.NewMetrics(nil)
		var cfg hub.Config
		m.Hooks(&cfg)
		e := start(t, httpapi.Config{Metrics: m}, cfg)
		second := httpapi.New(e.h, httpapi.Config{Metrics: m})
		require.NotNil(t, second)
		mfs, err := m.Gatherer().Gather()
		require.NoError(t, err, "the Stats collector is registered once")
		n := 0
		for _, mf := range mfs {
			if mf.GetName() == "roost_connections" {
				n++
			}
		}
		assert.Equal(t, 1, n)
	})
	t.Run("two Metrics on one registry share collectors", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		m1, m2 := httpapi.NewMetrics(reg), httpapi.NewMetrics(reg)
		m1.LimitRefused("max_header_bytes")
		m2.LimitRefused("max_header_bytes")
		assert.EqualValues(t, 2, value(t, reg, "roost_handshake_failures_total", "reason", "max_header_bytes"))
		var cfg hub.Config
		m2.Hooks(&cfg)
		cfg.OnFanout(3, time.Millisecond)
		assert.EqualValues(t, 1, value(t, m1.Gatherer(), "roost_fanout_recipients"))
	})
	t.Run("wrapping registerer", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		m := httpapi.NewMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"node": "n1"}, reg))
		assert.NotSame(t, reg, m.Gatherer(), "a wrapper cannot be gathered")
		start(t, httpapi.Config{Metrics: m}, hub.Config{})
		assert.Zero(t, value(t, m.Gatherer(), "roost_connections"))
		assert.Zero(t, value(t, reg, "roost_connections", "node", "n1"), "the wrapped registry has it too")
	})
	t.Run("hooks chain", func(t *testing.T) {
		m := httpapi.NewMetrics(nil)
		var fanouts, refusals int
		cfg := hub.Config{
			OnFanout:           func(int, time.Duration) { fanouts++ },
			OnHandshakeFailure: func(string) { refusals++ },
		}
		m.Hooks(&cfg)
		cfg.OnFanout(10, time.Millisecond)
		cfg.OnHandshakeFailure("origin")
		assert.Equal(t, 1, fanouts)
		assert.Equal(t, 1, refusals)
		assert.EqualValues(t, 1, value(t, m.Gatherer(), "roost_fanout_recipients"))
		assert.EqualValues(t, 1, value(t, m.Gatherer(), "roost_handshake_failures_total", "reason", "origin"))
	})
	t.Run("nil Metrics in Config", func(t *testing.T) {
		h, err := hub.New(hub.Config{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = h.Shutdown(t.Context()) })
		api := httpapi.New(h, httpapi.Config{})
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.Contains(t, rec.Body.String(), "roost_connections 0\n")
	})
}
