package httpapi

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/roost-rt/roost/hub"
)

// Handshake failure reasons. The hub reports the first list through
// hub.Config.OnHandshakeFailure; the second are limits a server enforces
// in front of the hub and reports through Metrics.LimitRefused. Both are
// exported at zero from the start so rate() works from the first scrape.
var (
	hubHandshakeReasons   = []string{"bad_request", "unauthorized", "forbidden", "origin", "limit", "timeout", "shutdown"}
	limitHandshakeReasons = []string{"conn_rate_per_ip", "max_header_bytes", "handshake_timeout"}
)

// Metrics owns roost's Prometheus collectors. Create it before hub.New so
// the hub's hooks can feed it (Hooks), then pass it to New, which adds the
// collector of the hub's Stats. A Metrics is safe for concurrent use.
type Metrics struct {
	gatherer  prometheus.Gatherer
	registers []prometheus.Registerer // reg, and the private gatherer when reg is not one

	fanoutSeconds    prometheus.Histogram
	fanoutRecipients prometheus.Histogram
	handshake        *prometheus.CounterVec

	// mu guards the one-time registration of stats.
	mu    sync.Mutex
	stats *statsCollector
}

// NewMetrics creates the collectors fed by hub hooks and registers them with
// reg, with the Go runtime and process collectors; nil reg means a new
// prometheus.Registry. Collectors reg already holds with the same
// description (the Go collector of prometheus.DefaultRegisterer, or those
// of an earlier Metrics on the same reg) are shared rather than refused.
// Like prometheus.MustRegister, it panics if reg holds a different collector
// under one of roost's names, a programming error found at start-up.
//
// Series (all prefixed roost_): the gauges connections, users, channels and
// subscriptions; the counters messages_in_total, messages_out_total,
// bytes_in_total, bytes_out_total, published_total, deliveries_total,
// write_syscalls_total, disconnects_total{reason}, evictions_total,
// write_errors_total, queue_overflows_total, rate_limited_total,
// broker_errors_total and handshake_failures_total{reason}; the histograms
// fanout_duration_seconds and fanout_recipients. The gauges and the
// counters except handshake_failures_total come from hub.Stats, read once
// per scrape; the rest from hooks.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{registers: []prometheus.Registerer{reg}}
	if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	} else {
		// A wrapping Registerer cannot be read back: keep a private
		// registry with the same collectors for /metrics.
		own := prometheus.NewRegistry()
		m.gatherer = own
		m.registers = append(m.registers, own)
	}
	m.fanoutSeconds = register(m, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "roost_fanout_duration_seconds",
		Help: "Time from the start of a local fan-out until its last recipient had the frame in the kernel or its queue.",
		// 10us .. 2.6s: a small channel is microseconds, 100k members tens of ms.
		Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10),
	}))
	m.fanoutRecipients = register(m, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "roost_fanout_recipients",
		Help:    "Local members a fan-out was written to.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 10), // 1 .. 262,144
	}))
	m.handshake = register(m, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "roost_handshake_failures_total",
		Help: "Refused WebSocket upgrades, by reason.",
	}, []string{"reason"}))
	for _, r := range hubHandshakeReasons {
		m.handshake.WithLabelValues(r)
	}
	for _, r := range limitHandshakeReasons {
		m.handshake.WithLabelValues(r)
	}
	register(m, collectors.NewGoCollector())
	register(m, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// register adds c to every registerer of m and returns the collector in
// use: c, or the equal one a registerer already held.
func register[C prometheus.Collector](m *Metrics, c C) C {
	for _, reg := range m.registers {
		err := reg.Register(c)
		if err == nil {
			continue
		}
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic("roost: httpapi: registering metrics: " + err.Error())
		}
		existing, ok := are.ExistingCollector.(C)
		if !ok {
			panic("roost: httpapi: registering metrics: a collector of another type holds the name: " + err.Error())
		}
		c = existing
	}
	return c
}

// Hooks sets cfg.OnFanout and cfg.OnHandshakeFailure to feed m; hooks
// already set are kept and called first.
func (m *Metrics) Hooks(cfg *hub.Config) {
	prevFanout := cfg.OnFanout
	cfg.OnFanout = func(recipients int, elapsed time.Duration) {
		if prevFanout != nil {
			prevFanout(recipients, elapsed)
		}
		m.fanoutSeconds.Observe(elapsed.Seconds())
		m.fanoutRecipients.Observe(float64(recipients))
	}
	prevHS := cfg.OnHandshakeFailure
	cfg.OnHandshakeFailure = func(reason string) {
		if prevHS != nil {
			prevHS(reason)
		}
		m.handshake.WithLabelValues(reason).Inc()
	}
}

// LimitRefused counts a connection refused by a limit enforced outside the
// hub, in roost_handshake_failures_total with the label reason=limit. The
// server uses
// "conn_rate_per_ip", "max_header_bytes" and "handshake_timeout"; other
// names are counted too, so keep them few and fixed.
func (m *Metrics) LimitRefused(limit string) {
	if limit == "" {
		limit = "unknown"
	}
	m.handshake.WithLabelValues(limit).Inc()
}

// Gatherer returns what /metrics serves: the registry given to NewMetrics
// when it is also a Gatherer (a *prometheus.Registry is), else a private
// registry holding the same collectors.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.gatherer }

// watch makes m report h's Stats. The Stats collector is registered once;
// a later call with another hub points it at that hub.
func (m *Metrics) watch(h *hub.Hub) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stats == nil {
		m.stats = register(m, newStatsCollector())
	}
	m.stats.hub.Store(h)
}

// statsCollector exports hub.Stats. It calls Stats once per scrape: Stats
// walks the registry's shards, and one consistent snapshot per scrape is
// both cheaper and more coherent than one call per series.
type statsCollector struct {
	hub atomic.Pointer[hub.Hub]

	connections, users, channels, subscriptions *prometheus.Desc

	messagesIn, messagesOut, bytesIn, bytesOut          *prometheus.Desc
	published, deliveries, writeCalls                   *prometheus.Desc
	evictions, writeErrors, queueOverflows, rateLimited *prometheus.Desc
	brokerErrors, disconnects                           *prometheus.Desc
}

func newStatsCollector() *statsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("roost_"+name, help, labels, nil)
	}
	return &statsCollector{
		connections:    d("connections", "Open WebSocket connections on this node."),
		users:          d("users", "Distinct users with at least one connection on this node."),
		channels:       d("channels", "Channels with at least one member on this node."),
		subscriptions:  d("subscriptions", "Channel memberships (connection, channel) on this node."),
		messagesIn:     d("messages_in_total", "Client commands received."),
		messagesOut:    d("messages_out_total", "Frames handed to the kernel: replies and pushes."),
		bytesIn:        d("bytes_in_total", "Bytes read from WebSocket connections."),
		bytesOut:       d("bytes_out_total", "Bytes written to WebSocket connections."),
		published:      d("published_total", "Messages published on this node: by the API, by clients and from the broker."),
		deliveries:     d("deliveries_total", "Pushes queued to a recipient."),
		writeCalls:     d("write_syscalls_total", "write and writev system calls made."),
		evictions:      d("evictions_total", "Connections the server ended because they failed (slow, silent, write errors)."),
		writeErrors:    d("write_errors_total", "Writes to a connection that failed."),
		queueOverflows: d("queue_overflows_total", "Outbound queues that overflowed their bound (the connection is evicted)."),
		rateLimited:    d("rate_limited_total", "Client commands answered 429 by the inbound rate limit."),
		brokerErrors:   d("broker_errors_total", "Publishes, sends and disconnects the broker failed to carry to other nodes."),
		disconnects:    d("disconnects_total", "Ended connections, by close reason.", "reason"),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.connections, c.users, c.channels, c.subscriptions,
		c.messagesIn, c.messagesOut, c.bytesIn, c.bytesOut,
		c.published, c.deliveries, c.writeCalls,
		c.evictions, c.writeErrors, c.queueOverflows, c.rateLimited,
		c.brokerErrors, c.disconnects,
	} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.hub.Load()
	if h == nil {
		return
	}
	s := h.Stats()
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.connections, s.Connections)
	gauge(c.users, s.Users)
	gauge(c.channels, s.Channels)
	gauge(c.subscriptions, s.Subscriptions)
	counter(c.messagesIn, s.MessagesIn)
	counter(c.messagesOut, s.MessagesOut)
	counter(c.bytesIn, s.BytesIn)
	counter(c.bytesOut, s.BytesOut)
	counter(c.published, s.Published)
	counter(c.deliveries, s.Deliveries)
	counter(c.writeCalls, s.WriteCalls)
	counter(c.evictions, s.Evictions)
	counter(c.writeErrors, s.WriteErrors)
	counter(c.queueOverflows, s.QueueOverflows)
	counter(c.rateLimited, s.RateLimited)
	counter(c.brokerErrors, s.BrokerErrors)
	for reason, n := range s.Disconnects {
		counter(c.disconnects, n, reason)
	}
}
