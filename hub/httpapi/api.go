package httpapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/roost-rt/roost/hub"
)

// defaultMaxBodyBytes is Config.MaxBodyBytes when it is zero: 1 MiB.
const defaultMaxBodyBytes = 1 << 20

// Config configures the handler New returns. The zero value serves the API
// to loopback clients only, with 1 MiB bodies and a private metrics registry.
type Config struct {
	// APIKey, when set, is required on every /api/* request as
	// "Authorization: apikey KEY" (401 otherwise). Empty means the API
	// answers only requests whose client address is a loopback address
	// (403 otherwise).
	APIKey string
	// MaxBodyBytes bounds a request body; a larger one is answered with 413.
	// Zero or negative means 1 MiB.
	MaxBodyBytes int64
	// Metrics serves /metrics. Nil means NewMetrics(nil), a private registry
	// whose hub hooks nobody installed: the Stats-based series and the Go
	// and process collectors are served, the fan-out histograms stay empty.
	Metrics *Metrics
	// RemoteAddr returns the client address of a request ("host:port" or
	// "host"), for example from X-Forwarded-For behind a trusted proxy. It
	// decides the loopback check when APIKey is empty. Nil uses r.RemoteAddr.
	RemoteAddr func(r *http.Request) string
	// Logger receives failures worth an operator's attention (5xx answers).
	// Nil discards them.
	Logger *slog.Logger
}

// route is one endpoint: the methods it answers and whether it is behind
// the API key.
type route struct {
	methods string // the Allow header value, e.g. "POST" or "GET, HEAD"
	api     bool
	serve   func(a *api, w http.ResponseWriter, r *http.Request)
}

var routes = map[string]route{
	"/api/publish":    {methods: "POST", api: true, serve: (*api).publish},
	"/api/broadcast":  {methods: "POST", api: true, serve: (*api).broadcast},
	"/api/send":       {methods: "POST", api: true, serve: (*api).send},
	"/api/disconnect": {methods: "POST", api: true, serve: (*api).disconnect},
	"/api/presence":   {methods: "GET, HEAD", api: true, serve: (*api).presence},
	"/api/online":     {methods: "GET, HEAD", api: true, serve: (*api).online},
	"/api/stats":      {methods: "GET, HEAD", api: true, serve: (*api).stats},
	"/api/channels":   {methods: "GET, HEAD", api: true, serve: (*api).channels},
	"/metrics":        {methods: "GET, HEAD", serve: (*api).metrics},
	"/healthz":        {methods: "GET, HEAD", serve: (*api).healthz},
	"/readyz":         {methods: "GET, HEAD", serve: (*api).readyz},
}

// api is the handler New returns. It holds no mutable state of its own.
type api struct {
	h          *hub.Hub
	keyDigest  [sha256.Size]byte
	hasKey     bool
	maxBody    int64
	remoteAddr func(r *http.Request) string
	log        *slog.Logger
	promh      http.Handler
}

// New returns the handler for /api/*, /metrics, /healthz and /readyz; mount
// it on "/" next to the hub's "/ws". It registers h's Stats collector with
// cfg.Metrics (once per Metrics, however often New is called).
func New(h *hub.Hub, cfg Config) http.Handler {
	a := &api{
		h:          h,
		maxBody:    cfg.MaxBodyBytes,
		remoteAddr: cfg.RemoteAddr,
		log:        cfg.Logger,
	}
	if a.maxBody <= 0 {
		a.maxBody = defaultMaxBodyBytes
	}
	if cfg.APIKey != "" {
		a.hasKey = true
		a.keyDigest = sha256.Sum256([]byte(cfg.APIKey))
	}
	if a.remoteAddr == nil {
		a.remoteAddr = func(r *http.Request) string { return r.RemoteAddr }
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	m := cfg.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	m.watch(h)
	a.promh = promhttp.HandlerFor(m.Gatherer(), promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{a.log},
		ErrorHandling: promhttp.ContinueOnError,
	})
	return a
}

// ServeHTTP routes a request: for /api/* it checks the caller first, so an
// unauthenticated client learns nothing about paths or methods.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, known := routes[r.URL.Path]
	if (known && rt.api) || strings.HasPrefix(r.URL.Path, "/api/") {
		if !a.authorized(w, r) {
			return
		}
	}
	if !known {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	if !allows(rt.methods, r.Method) {
		w.Header().Set("Allow", rt.methods)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+rt.methods)
		return
	}
	rt.serve(a, w, r)
}

func allows(methods, m string) bool {
	for ok := range strings.SplitSeq(methods, ", ") {
		if ok == m {
			return true
		}
	}
	return false
}

// authorized checks the API key, or without one the loopback rule, and
// answers the refusal itself.
func (a *api) authorized(w http.ResponseWriter, r *http.Request) bool {
	if a.hasKey {
		got, ok := apiKey(r.Header.Get("Authorization"))
		d := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(d[:], a.keyDigest[:]) != 1 {
			w.Header().Set("WWW-Authenticate", "apikey")
			writeError(w, http.StatusUnauthorized, "missing or wrong API key (send \"Authorization: apikey KEY\")")
			return false
		}
		return true
	}
	if !isLoopback(a.remoteAddr(r)) {
		writeError(w, http.StatusForbidden, "no API key is configured, so the API answers loopback clients only")
		return false
	}
	return true
}

// apiKey extracts KEY from "apikey KEY"; the scheme is case-insensitive as
// RFC 9110 section 11.1 asks of authentication schemes.
func apiKey(header string) (string, bool) {
	scheme, key, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "apikey") {
		return "", false
	}
	key = strings.TrimSpace(key)
	return key, key != ""
}

// isLoopback reports whether addr ("host:port" or "host") is a loopback
// address; names are not resolved, so "localhost" is not loopback here.
func isLoopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.Unmap().IsLoopback()
}

// decode reads the JSON body of r into v: at most maxBody bytes (413 past
// it), one object, no unknown fields, nothing after it. It answers the
// error itself and reports whether decoding succeeded.
func (a *api) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body is larger than the limit of "+strconv.FormatInt(tooBig.Limit, 10)+" bytes")
			return false
		}
		writeError(w, http.StatusBadRequest, "reading request body: "+err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "request body is not the expected JSON object: "+err.Error())
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "request body holds data after the JSON object")
		return false
	}
	return true
}

// fail answers err, an error from the hub, with its HTTP status.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *hub.Error
	switch {
	case errors.Is(err, hub.ErrBadChannel):
		writeError(w, http.StatusBadRequest, "invalid channel name: 1 to 255 bytes, printable, no whitespace")
	case errors.Is(err, hub.ErrBadData):
		writeError(w, http.StatusBadRequest, "data is not one valid JSON value")
	case errors.Is(err, hub.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found")
	case errors.Is(err, hub.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "the hub is shut down")
	case errors.Is(err, hub.ErrBrokerDown):
		a.log.Warn("httpapi: cluster delivery failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, "delivered locally; cluster delivery failed: "+err.Error())
	case errors.As(err, &he) && he.Code >= 400 && he.Code < 600:
		writeError(w, he.Code, he.Message)
	default:
		a.log.Error("httpapi: request failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	var b errorBody
	b.Error.Code = status
	b.Error.Message = msg
	writeJSON(w, status, &b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only our own response types get here; they always encode
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":500,"message":"encoding response"}}`)
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// okBody is the answer of every successful command.
var okBody = json.RawMessage(`{"ok":true}`)

// slogPrinter adapts a *slog.Logger to promhttp's Println logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Error("httpapi: serving metrics", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}
