package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roost-rt/roost/cluster"
	"github.com/roost-rt/roost/hub"
	"github.com/roost-rt/roost/hub/auth"
	"github.com/roost-rt/roost/hub/httpapi"
)

// server is one roost node: the hub on /ws, the demo page on /, the HTTP
// API and probes on the rest, and optionally a Redis cluster broker.
type server struct {
	opts    *options
	log     *slog.Logger
	hub     *hub.Hub
	http    *http.Server
	ln      net.Listener
	redis   redis.UniversalClient // nil on a single node
	limiter *ipLimiter            // nil when --conn-rate-per-ip is 0
	metrics *httpapi.Metrics
	remote  func(r *http.Request) string
	tls     bool
}

// newServer builds everything from o and binds the listening socket, so a
// busy port fails here, before anything is announced. Errors caused by a
// setting are *configError.
func newServer(o *options, log *slog.Logger) (*server, error) {
	s := &server{opts: o, log: log, metrics: httpapi.NewMetrics(nil)}
	trusted, _ := parseProxies(o.TrustedProxies) // validated already
	s.remote = clientAddrFunc(trusted)
	s.limiter = newIPLimiter(o.ConnRatePerIP, o.ConnBurstPerIP, maxTrackedIPs)

	hc, err := s.hubConfig()
	if err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	if o.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return nil, o.configErr("tls-cert", err.Error())
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.tls = true
	}
	if o.RedisURL != "" || o.RedisCluster != "" {
		if err := s.joinCluster(&hc); err != nil {
			return nil, err
		}
	}

	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		s.closeRedis()
		return nil, err
	}
	s.ln = countingListener{Listener: ln, refused: s.metrics.LimitRefused}
	if tlsCfg != nil {
		s.ln = tls.NewListener(s.ln, tlsCfg)
	}

	h, err := hub.New(hc)
	if err != nil {
		_ = ln.Close()
		s.closeRedis()
		return nil, err
	}
	s.hub = h

	mux := http.NewServeMux()
	mux.Handle("/ws", http.HandlerFunc(s.serveWS))
	mux.Handle("GET /{$}", demoHandler())
	mux.Handle("/", httpapi.New(h, httpapi.Config{
		APIKey:     o.APIKey,
		Metrics:    s.metrics,
		RemoteAddr: s.remote,
		Logger:     log,
	}))
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: o.HandshakeTimeout,
		// IdleTimeout frees the sockets of idle keep-alive API clients.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: o.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext:    connContext,
	}
	return s, nil
}

// offIfZero turns the command line's "0: unlimited, never" into the hub's
// negative "off" (where the hub's zero means its default).
func offIfZero[T int | float64 | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// hubConfig translates the options into a hub.Config; the command line's
// "0 means unlimited" becomes the hub's "negative means unlimited".
func (s *server) hubConfig() (hub.Config, error) {
	o := s.opts
	hc := hub.Config{
		RemoteAddr:              s.remote,
		MaxConnections:          o.MaxConnections,
		MaxMessageBytes:         offIfZero(o.MaxMessageBytes),
		MaxSubscriptionsPerConn: offIfZero(o.MaxSubscriptionsPerConn),
		InboundRate:             offIfZero(o.InboundRate),
		OutboundQueueBytes:      o.OutboundQueueBytes,
		WriteTimeout:            o.WriteTimeout,
		FanoutWorkers:           o.FanoutWorkers,
		SendBufferBytes:         o.SendBufferBytes,
		PingInterval:            offIfZero(o.PingInterval),
		IdleTimeout:             offIfZero(o.IdleTimeout),
		HandshakeTimeout:        o.HandshakeTimeout,
		DrainRate:               o.DrainRate,
		Logger:                  s.log,
	}
	if o.tokenMode() {
		ac := auth.Config{Audience: o.AuthAudience, Issuer: o.AuthIssuer}
		if o.AuthSecret != "" {
			ac.Secret = []byte(o.AuthSecret)
		} else {
			pem, err := os.ReadFile(o.AuthPublicKey)
			if err != nil {
				return hc, o.configErr("auth-public-key", err.Error())
			}
			if ac.PublicKey, err = auth.LoadPublicKey(pem); err != nil {
				return hc, o.configErr("auth-public-key", trimRoost(err))
			}
		}
		v, err := auth.New(ac)
		if err != nil {
			name := "auth-secret"
			if o.AuthPublicKey != "" {
				name = "auth-public-key"
			}
			return hc, o.configErr(name, trimRoost(err))
		}
		hc.Authenticate = v.Authenticate()
		hc.Refresh = v.Refresh()
	}
	if o.tokenMode() || o.ClientPublish != "" {
		// Token mode: client publishes only where --client-publish allows
		// (nowhere by default); open mode publishes everywhere unless the
		// operator narrowed it.
		hc.AuthorizePublish = auth.ClientPublishPrefixes(splitList(o.ClientPublish))
	}
	check, _ := newOriginCheck(o.AllowedOrigins, o.tokenMode()) // validated already
	hc.CheckOrigin = check
	s.metrics.Hooks(&hc)
	return hc, nil
}

// trimRoost drops the "roost: auth: " prefix of a package error, which the
// flag name replaces in a configError.
func trimRoost(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "roost: ")
	return strings.TrimPrefix(s, "auth: ")
}

// joinCluster connects the Redis broker and presence store. Redis need not
// be reachable yet: the node starts degraded and joins when it appears.
func (s *server) joinCluster(hc *hub.Config) error {
	o := s.opts
	if o.RedisURL != "" {
		ro, err := redis.ParseURL(o.RedisURL)
		if err != nil {
			return o.configErr("redis-url", err.Error())
		}
		s.redis = redis.NewClient(ro)
	} else {
		s.redis = redis.NewClusterClient(&redis.ClusterOptions{Addrs: splitList(o.RedisCluster)})
	}
	b, err := cluster.New(cluster.Config{
		Client:      s.redis,
		Prefix:      o.RedisPrefix,
		NodeID:      o.NodeID,
		PresenceTTL: o.PresenceTTL,
		Logger:      s.log,
	})
	if err != nil {
		s.closeRedis()
		return err
	}
	hc.Broker = b
	hc.Presence = b
	s.log.Info("cluster mode", "node", b.NodeID(), "prefix", o.RedisPrefix)
	return nil
}

func (s *server) closeRedis() {
	if s.redis != nil {
		_ = s.redis.Close()
	}
}

// serveWS guards the hub's upgrade with what the hub does not know about:
// the per-IP connection rate.
func (s *server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.limiter != nil {
		ok, full := s.limiter.allow(hostOf(s.remote(r)), time.Now())
		if full {
			s.log.Warn("per-IP connection rate: tracking the maximum number of addresses; new addresses are admitted untracked", "max", maxTrackedIPs)
		}
		if !ok {
			s.metrics.LimitRefused("conn_rate_per_ip")
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "too many connection attempts from this address")
			return
		}
	}
	markUpgraded(r)
	s.hub.ServeHTTP(w, r)
}

// writeError answers in the format of the hub's and the API's refusals.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":%q}}`+"\n", code, msg)
}

// announce logs where the node listens, the TLS caveat, and in open mode
// where to point a browser.
func (s *server) announce() {
	o := s.opts
	addr := s.ln.Addr().String()
	mode := "open"
	if o.tokenMode() {
		mode = "token"
	}
	if s.tls {
		s.log.Warn("TLS is served in process: each wss connection costs two goroutines instead of a place on the epoll poller; " +
			"for many connections terminate TLS at a proxy or load balancer in front of roost and forward plain ws to it")
	}
	if mode == "open" {
		scheme := "http"
		if s.tls {
			scheme = "https"
		}
		s.log.Info("open mode is for development: anyone may connect as any user and publish anywhere; set --auth-secret or --auth-public-key in production",
			"url", scheme+"://"+browsable(addr)+"/")
	}
	// Last, so that whoever waits for this line (tests, scripts) has seen
	// the others.
	s.log.Info("roost listening", "addr", addr, "mode", mode, "tls", s.tls, "cluster", s.redis != nil)
}

// browsable turns a listen address into one a local browser can open.
func browsable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// serve runs the HTTP server until shutdown; it returns nil after a
// shutdown and the error otherwise.
func (s *server) serve() error {
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// shutdown drains the node: the hub flips /readyz to false, refuses new
// upgrades with 503 and closes its WebSockets with 4001 at --drain-rate
// while, in parallel, the HTTP server closes its listener and waits for
// in-flight API requests. Then the Redis client is closed. Connections
// left when ctx ends are closed at once; the error says so.
func (s *server) shutdown(ctx context.Context) error {
	var wg sync.WaitGroup
	var httpErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		httpErr = s.http.Shutdown(ctx)
	}()
	hubErr := s.hub.Shutdown(ctx)
	wg.Wait()
	s.closeRedis()
	if hubErr != nil {
		return fmt.Errorf("hub: %w", hubErr)
	}
	if httpErr != nil {
		_ = s.http.Close()
		return fmt.Errorf("http: %w", httpErr)
	}
	return nil
}

// newLogger builds the process logger from --log-format and --log-level.
func newLogger(o *options, w io.Writer) *slog.Logger {
	level, _ := parseLevel(o.LogLevel) // validated already
	ho := &slog.HandlerOptions{Level: level}
	if o.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		err := l.UnmarshalText([]byte(s))
		return l, err
	}
	return l, errors.New("unknown level")
}
