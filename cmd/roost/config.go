package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// options is roost's configuration once flags, environment and config file
// have been merged. Limits use the command-line convention that 0 means
// unlimited (or disabled); server.go translates them to the hub's zero-value
// convention, where 0 means "the default".
type options struct {
	Config      string
	PrintConfig bool

	Addr      string
	LogFormat string
	LogLevel  string

	AuthSecret    string
	AuthPublicKey string
	AuthAudience  string
	AuthIssuer    string
	ClientPublish string

	APIKey         string
	AllowedOrigins string
	TLSCert        string
	TLSKey         string
	TrustedProxies string

	MaxConnections          int
	ConnRatePerIP           float64
	ConnBurstPerIP          int
	HandshakeTimeout        time.Duration
	MaxHeaderBytes          int
	MaxMessageBytes         int
	InboundRate             float64
	MaxSubscriptionsPerConn int
	PingInterval            time.Duration
	IdleTimeout             time.Duration
	WriteTimeout            time.Duration
	OutboundQueueBytes      int
	FanoutWorkers           int
	GCPercent               int
	SendBufferBytes         int

	DrainRate       float64
	ShutdownTimeout time.Duration

	RedisURL     string
	RedisCluster string
	RedisPrefix  string
	NodeID       string
	PresenceTTL  time.Duration

	// sources records where each flag's value came from ("flag", "env
	// ROOST_X", "file roost.conf:3" or "default"), for --print-config and
	// for error messages.
	sources map[string]string
	// fs is the FlagSet bound to this options, for --print-config.
	fs *flag.FlagSet
}

// section groups flags in --help.
type section struct {
	title string
	names []string
}

// sections is the order --help and --print-config list the flags in. Every
// flag registered by newFlagSet appears exactly once
// (TestSectionsListEveryFlagOnce).
var sections = []section{
	{"General", []string{"config", "print-config", "addr", "log-format", "log-level"}},
	{"Authentication", []string{"auth-secret", "auth-public-key", "auth-audience", "auth-issuer", "client-publish", "allowed-origins", "api-key"}},
	{"TLS and proxies", []string{"tls-cert", "tls-key", "trusted-proxies"}},
	{"Limits", []string{"max-connections", "conn-rate-per-ip", "conn-burst-per-ip", "handshake-timeout", "max-header-bytes",
		"max-message-bytes", "inbound-rate", "max-subscriptions-per-conn", "ping-interval", "idle-timeout", "write-timeout",
		"outbound-queue-bytes", "send-buffer-bytes", "fanout-workers"}},
	{"Runtime", []string{"gc-percent"}},
	{"Shutdown", []string{"drain-rate", "shutdown-timeout"}},
	{"Cluster (Redis)", []string{"redis-url", "redis-cluster", "redis-prefix", "node-id", "presence-ttl"}},
}

// secretFlags are redacted by --print-config.
var secretFlags = map[string]bool{"auth-secret": true, "api-key": true}

// newFlagSet registers every flag of roost on a fresh FlagSet bound to o.
// Defaults live here and nowhere else.
func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("roost", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse errors are reported by run, usage by printUsage
	fs.StringVar(&o.Config, "config", "", "read settings from this `file`: one \"name = value\" a line, names as in these flags")
	fs.BoolVar(&o.PrintConfig, "print-config", false, "print the effective settings and where each came from, then exit")
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8080", "listen address, host:port (port 0 picks a free port; the log says which)")
	fs.StringVar(&o.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.LogLevel, "log-level", "info", "log level: debug, info, warn or error")

	fs.StringVar(&o.AuthSecret, "auth-secret", "", "HMAC secret (>= 32 bytes) verifying HS256/384/512 tokens; enables token mode")
	fs.StringVar(&o.AuthPublicKey, "auth-public-key", "", "PEM file with the public key verifying RS256/ES256/EdDSA tokens; enables token mode")
	fs.StringVar(&o.AuthAudience, "auth-audience", "", "required \"aud\" claim of tokens (empty: not checked)")
	fs.StringVar(&o.AuthIssuer, "auth-issuer", "", "required \"iss\" claim of tokens (empty: not checked)")
	fs.StringVar(&o.ClientPublish, "client-publish", "", "channel prefixes clients may publish to, comma-separated (\"*\": all); empty: all in open mode, none in token mode")
	fs.StringVar(&o.AllowedOrigins, "allowed-origins", "", "Origins allowed to open WebSockets, comma-separated (\"*\": any); empty: any in open mode, same host in token mode")
	fs.StringVar(&o.APIKey, "api-key", "", "key the HTTP API requires (Authorization: apikey KEY); empty: the API answers loopback clients only")

	fs.StringVar(&o.TLSCert, "tls-cert", "", "PEM certificate file: serve HTTPS and wss (a wss connection costs two goroutines; terminate TLS at a proxy for density, see docs/operations.md)")
	fs.StringVar(&o.TLSKey, "tls-key", "", "PEM private key file for --tls-cert")
	fs.StringVar(&o.TrustedProxies, "trusted-proxies", "", "proxy addresses or CIDRs whose X-Forwarded-For is believed, comma-separated")

	fs.IntVar(&o.MaxConnections, "max-connections", 0, "open WebSockets beyond which upgrades get 503 (0: unlimited)")
	fs.Float64Var(&o.ConnRatePerIP, "conn-rate-per-ip", 0, "WebSocket upgrades per second one client IP may make; beyond: 429 (0: unlimited)")
	fs.IntVar(&o.ConnBurstPerIP, "conn-burst-per-ip", 0, "burst for --conn-rate-per-ip (0: twice the rate, at least 1)")
	fs.DurationVar(&o.HandshakeTimeout, "handshake-timeout", 10*time.Second, "time a client has to send its request headers (and finish the upgrade)")
	fs.IntVar(&o.MaxHeaderBytes, "max-header-bytes", 32<<10, "largest request header block, in bytes; beyond: 431")
	fs.IntVar(&o.MaxMessageBytes, "max-message-bytes", 64<<10, "largest inbound WebSocket message, in bytes; beyond: close 1009 (0: unlimited)")
	fs.Float64Var(&o.InboundRate, "inbound-rate", 100, "messages per second one connection may send; beyond: error 429, then close 1008 (0: unlimited)")
	fs.IntVar(&o.MaxSubscriptionsPerConn, "max-subscriptions-per-conn", 1000, "channels one connection may join; beyond: error 429 (0: unlimited)")
	fs.DurationVar(&o.PingInterval, "ping-interval", 25*time.Second, "silence after which the server pings a connection (0: never)")
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", 60*time.Second, "silence after which a connection is closed with 4012 (0: never)")
	fs.DurationVar(&o.WriteTimeout, "write-timeout", 10*time.Second, "time queued output may make no progress before the connection is evicted (4008)")
	fs.IntVar(&o.OutboundQueueBytes, "outbound-queue-bytes", 1<<20, "bytes queued for one slow connection before it is evicted (4008)")
	fs.IntVar(&o.SendBufferBytes, "send-buffer-bytes", 0, "kernel send buffer per socket (SO_SNDBUF) in bytes; caps kernel memory per connection during bursts (0: kernel autotuning)")
	fs.IntVar(&o.FanoutWorkers, "fanout-workers", 0, "goroutines writing fan-out batches (0: twice the number of CPUs)")
	fs.IntVar(&o.GCPercent, "gc-percent", 50, "Go GC target: heap growth in percent of the live heap before a collection; lower holds more idle connections per GiB for more GC work during connect storms (0: the Go default, GOGC or 100)")

	fs.Float64Var(&o.DrainRate, "drain-rate", 0, "connections per second closed with 4001 on shutdown (0: spread over --shutdown-timeout)")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "time SIGTERM/SIGINT may take to drain before the rest is closed at once")

	fs.StringVar(&o.RedisURL, "redis-url", "", "Redis to join a cluster through, redis://[user:pass@]host:port[/db] (empty: single node)")
	fs.StringVar(&o.RedisCluster, "redis-cluster", "", "Redis Cluster seed nodes, host:port comma-separated (instead of --redis-url)")
	fs.StringVar(&o.RedisPrefix, "redis-prefix", "roost", "prefix of every Redis key and channel, so several roost clusters can share a Redis")
	fs.StringVar(&o.NodeID, "node-id", "", "this node's unique id in the cluster (empty: random)")
	fs.DurationVar(&o.PresenceTTL, "presence-ttl", 30*time.Second, "time a dead node's presence entries outlive it in Redis")
	return fs
}

// envName returns the environment variable of a flag: ROOST_ and the flag
// name in upper snake case.
func envName(flagName string) string {
	return "ROOST_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// configError is a bad setting. It names the flag and where the value came
// from; run reports it and exits with status 2.
type configError struct {
	flag   string
	source string // "flag", "env ROOST_X", "file f:3", "default"
	msg    string
}

func (e *configError) Error() string {
	s := "roost: invalid --" + e.flag
	if e.source != "" && e.source != "flag" {
		s += " (from " + e.source + ")"
	}
	return s + ": " + e.msg
}

// errUsage is an error of the command line itself (unknown flag, stray
// argument); run reports it and exits with status 2.
var errUsage = errors.New("roost: bad command line")

// parseConfig merges, in order of precedence, the command line, the
// environment (getenv) and the config file over the defaults, then checks
// every value. It returns flag.ErrHelp for -h/--help. environ lists the
// environment as KEY=VALUE, to warn about ROOST_ variables that name no flag
// (a typo would otherwise be ignored silently); the warnings are returned
// because no logger exists yet.
func parseConfig(args []string, environ []string) (*options, []string, error) {
	getenv := func(k string) (string, bool) {
		for i := len(environ) - 1; i >= 0; i-- {
			if name, v, ok := strings.Cut(environ[i], "="); ok && name == k {
				return v, true
			}
		}
		return "", false
	}
	o := &options{sources: map[string]string{}}
	fs := newFlagSet(o)
	o.fs = fs
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, commandLineError(fs, err)
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("%w: unexpected argument %q (roost takes only flags)", errUsage, fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { o.sources[f.Name] = "flag" })

	if o.sources["config"] == "" {
		if v, ok := getenv(envName("config")); ok {
			o.Config = v
			o.sources["config"] = "env " + envName("config")
		}
	}
	var file map[string]fileValue
	if o.Config != "" {
		var err error
		if file, err = readConfigFile(o.Config, fs); err != nil {
			return nil, nil, o.configErr("config", err.Error())
		}
	}

	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || f.Name == "config" || o.sources[f.Name] != "" {
			return
		}
		// The environment wins over the file; a flag set on the command
		// line was skipped above.
		v, src := "", "default"
		if ev, ok := getenv(envName(f.Name)); ok {
			v, src = ev, "env "+envName(f.Name)
		} else if fv, ok := file[f.Name]; ok {
			v, src = fv.value, "file "+o.Config+":"+strconv.Itoa(fv.line)
		}
		o.sources[f.Name] = src
		if src == "default" {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = &configError{flag: f.Name, source: src, msg: valueErrorText(f, v, e)}
		}
	})
	if err != nil {
		return nil, nil, err
	}
	var warnings []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "ROOST_") {
			continue
		}
		name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "ROOST_"), "_", "-"))
		if fs.Lookup(name) == nil {
			warnings = append(warnings, "environment variable "+k+" names no roost flag; ignored")
		}
	}
	if err := o.validate(); err != nil {
		return nil, nil, err
	}
	return o, warnings, nil
}

// commandLineError turns the flag package's parse error into the message
// the environment and the file get: "--name" spelling, a reason by type.
func commandLineError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	var value, name string
	if _, e := fmt.Sscanf(msg, "invalid value %q for flag -%s", &value, &name); e == nil {
		name = strings.TrimSuffix(name, ":")
		if f := fs.Lookup(name); f != nil {
			return &configError{flag: name, source: "flag", msg: valueErrorText(f, value, err)}
		}
	}
	msg = strings.Replace(msg, "flag provided but not defined: -", "unknown flag --", 1)
	msg = strings.Replace(msg, "bad flag syntax: ", "bad flag syntax ", 1)
	return fmt.Errorf("%w: %s", errUsage, msg)
}

// valueErrorText says why value does not fit flag f.
func valueErrorText(f *flag.Flag, value string, err error) string {
	if strings.Contains(err.Error(), "out of range") {
		return strconv.Quote(value) + " is out of range"
	}
	kind, _ := flag.UnquoteUsage(f)
	want := map[string]string{
		"int": "an integer", "float": "a number", "duration": "a duration with a unit (500ms, 10s, 1m)", "": "true or false",
	}[kind]
	if want == "" {
		want = "a valid value"
	}
	return strconv.Quote(value) + " is not " + want
}

// fileValue is one setting read from a config file.
type fileValue struct {
	value string
	line  int
}

// readConfigFile reads a config file: one `key = value` per line, where key
// is a flag name without dashes; blank lines and lines starting with '#' are
// skipped; a value may be wrapped in double quotes (then Go escapes apply)
// to keep leading or trailing spaces or a '#'. An unknown key, a repeated
// key, or "config" itself is an error naming the line.
func readConfigFile(path string, fs *flag.FlagSet) (map[string]fileValue, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config file: %v", err)
	}
	defer f.Close()
	out := map[string]fileValue{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := fmt.Sprintf("%s:%d: ", path, n)
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, errors.New(where + "want `key = value`")
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		key = strings.TrimLeft(key, "-")
		switch {
		case key == "config":
			return nil, errors.New(where + "a config file cannot name another config file")
		case fs.Lookup(key) == nil:
			return nil, errors.New(where + "unknown setting " + strconv.Quote(key) + " (keys are flag names, see roost --help)")
		}
		if _, dup := out[key]; dup {
			return nil, errors.New(where + "setting " + strconv.Quote(key) + " given twice")
		}
		if strings.HasPrefix(value, `"`) {
			uq, err := strconv.Unquote(value)
			if err != nil {
				return nil, errors.New(where + "badly quoted value")
			}
			value = uq
		}
		out[key] = fileValue{value: value, line: n}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read config file: %v", err)
	}
	return out, nil
}

// configErr reports msg about flag name, with where its value came from.
func (o *options) configErr(name, msg string) error {
	return &configError{flag: name, source: o.sources[name], msg: msg}
}

// validate checks the values that parse but make no sense. The first problem
// found is returned as a *configError naming its flag.
func (o *options) validate() error {
	bad := func(name, format string, args ...any) error { return o.configErr(name, fmt.Sprintf(format, args...)) }
	if _, port, err := net.SplitHostPort(o.Addr); err != nil {
		return bad("addr", "%q is not host:port", o.Addr)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return bad("addr", "%q has no valid port", o.Addr)
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		return bad("log-format", "%q is not text or json", o.LogFormat)
	}
	if _, err := parseLevel(o.LogLevel); err != nil {
		return bad("log-level", "%q is not debug, info, warn or error", o.LogLevel)
	}
	if o.AuthSecret != "" && o.AuthPublicKey != "" {
		return bad("auth-secret", "set either --auth-secret or --auth-public-key, not both")
	}
	if o.AuthSecret != "" && len(o.AuthSecret) < 32 {
		return bad("auth-secret", "the secret is %d bytes; at least 32 are required (RFC 7518 section 3.2)", len(o.AuthSecret))
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return bad("tls-cert", "--tls-cert and --tls-key go together")
	}
	if _, err := parseProxies(o.TrustedProxies); err != nil {
		return bad("trusted-proxies", "%v", err)
	}
	if _, err := newOriginCheck(o.AllowedOrigins, false); err != nil {
		return bad("allowed-origins", "%v", err)
	}
	nonNegInt := map[string]int{
		"max-connections": o.MaxConnections, "conn-burst-per-ip": o.ConnBurstPerIP,
		"max-message-bytes": o.MaxMessageBytes, "max-subscriptions-per-conn": o.MaxSubscriptionsPerConn,
		"fanout-workers": o.FanoutWorkers, "gc-percent": o.GCPercent, "send-buffer-bytes": o.SendBufferBytes,
	}
	positiveInt := map[string]int{"max-header-bytes": o.MaxHeaderBytes, "outbound-queue-bytes": o.OutboundQueueBytes}
	nonNegFloat := map[string]float64{"conn-rate-per-ip": o.ConnRatePerIP, "inbound-rate": o.InboundRate, "drain-rate": o.DrainRate}
	nonNegDur := map[string]time.Duration{"ping-interval": o.PingInterval, "idle-timeout": o.IdleTimeout, "presence-ttl": o.PresenceTTL}
	positiveDur := map[string]time.Duration{"handshake-timeout": o.HandshakeTimeout, "write-timeout": o.WriteTimeout, "shutdown-timeout": o.ShutdownTimeout}
	// Check in --help order so the first error is stable.
	for _, sec := range sections {
		for _, name := range sec.names {
			if v, ok := nonNegInt[name]; ok && v < 0 {
				return bad(name, "%d is negative (0 means unlimited)", v)
			}
			if v, ok := positiveInt[name]; ok && v <= 0 {
				return bad(name, "%d must be positive", v)
			}
			if v, ok := nonNegFloat[name]; ok && (v < 0 || math.IsNaN(v) || math.IsInf(v, 0)) {
				return bad(name, "%v must be a finite number >= 0", v)
			}
			if v, ok := nonNegDur[name]; ok && v < 0 {
				return bad(name, "%v is negative", v)
			}
			if v, ok := positiveDur[name]; ok && v <= 0 {
				return bad(name, "%v must be positive", v)
			}
		}
	}
	if o.ConnBurstPerIP > 0 && o.ConnRatePerIP == 0 {
		return bad("conn-burst-per-ip", "needs --conn-rate-per-ip")
	}
	if o.RedisURL != "" && o.RedisCluster != "" {
		return bad("redis-cluster", "set either --redis-url or --redis-cluster, not both")
	}
	if o.RedisCluster != "" {
		for _, a := range splitList(o.RedisCluster) {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return bad("redis-cluster", "%q is not host:port", a)
			}
		}
	}
	if strings.ContainsAny(o.RedisPrefix, "{}") || o.RedisPrefix == "" {
		return bad("redis-prefix", "%q must be non-empty and hold no '{' or '}'", o.RedisPrefix)
	}
	if strings.ContainsRune(o.NodeID, 0) || len(o.NodeID) > 255 {
		return bad("node-id", "must be at most 255 bytes without NUL")
	}
	return nil
}

// tokenMode reports whether tokens are required to connect.
func (o *options) tokenMode() bool { return o.AuthSecret != "" || o.AuthPublicKey != "" }

// splitList splits a comma-separated flag value, trimming spaces and
// dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
