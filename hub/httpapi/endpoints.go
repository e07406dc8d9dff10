package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"strconv"

	"github.com/roost-rt/roost/hub"
)

const (
	// maxBroadcastChannels bounds the channels of one /api/broadcast, so one
	// request cannot hold a handler for an unbounded number of fan-outs.
	maxBroadcastChannels = 1000
	// defaultChannelsLimit and maxChannelsLimit are the page sizes of
	// /api/channels when limit is absent, and the largest allowed.
	defaultChannelsLimit = 100
	maxChannelsLimit     = 1000
)

// publishRequest is the body of /api/publish.
type publishRequest struct {
	Channel     string          `json:"channel"`
	Data        json.RawMessage `json:"data"`
	ExcludeUser string          `json:"exclude_user"`
}

func (a *api) publish(w http.ResponseWriter, r *http.Request) {
	var req publishRequest
	if !a.decode(w, r, &req) {
		return
	}
	if !validChannel(w, req.Channel) || !hasData(w, req.Data) {
		return
	}
	var opts []hub.PublishOption
	if req.ExcludeUser != "" {
		opts = append(opts, hub.ExcludeUser(req.ExcludeUser))
	}
	if err := a.h.Publish(r.Context(), req.Channel, req.Data, opts...); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, okBody)
}

// broadcastRequest is the body of /api/broadcast.
type broadcastRequest struct {
	Channels    []string        `json:"channels"`
	Data        json.RawMessage `json:"data"`
	ExcludeUser string          `json:"exclude_user"`
}

// broadcast publishes one message to several channels. Every channel is
// validated before the first publish, so a bad request delivers nothing. A
// channel listed twice gets the message once. When the Broker fails, every
// channel is still delivered locally and the first broker error is
// answered (503) at the end.
func (a *api) broadcast(w http.ResponseWriter, r *http.Request) {
	var req broadcastRequest
	if !a.decode(w, r, &req) {
		return
	}
	switch n := len(req.Channels); {
	case n == 0:
		writeError(w, http.StatusBadRequest, `"channels" is required and must not be empty`)
		return
	case n > maxBroadcastChannels:
		writeError(w, http.StatusBadRequest, `"channels" lists `+strconv.Itoa(n)+" channels; at most "+strconv.Itoa(maxBroadcastChannels)+" are allowed")
		return
	}
	for _, ch := range req.Channels {
		if !validChannel(w, ch) {
			return
		}
	}
	if !hasData(w, req.Data) {
		return
	}
	var opts []hub.PublishOption
	if req.ExcludeUser != "" {
		opts = append(opts, hub.ExcludeUser(req.ExcludeUser))
	}
	seen := make(map[string]struct{}, len(req.Channels))
	var brokerErr error
	for _, ch := range req.Channels {
		if _, dup := seen[ch]; dup {
			continue
		}
		seen[ch] = struct{}{}
		err := a.h.Publish(r.Context(), ch, req.Data, opts...)
		if errors.Is(err, hub.ErrBrokerDown) {
			if brokerErr == nil {
				brokerErr = err
			}
			continue
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if brokerErr != nil {
		a.fail(w, r, brokerErr)
		return
	}
	writeJSON(w, http.StatusOK, okBody)
}

// sendRequest is the body of /api/send.
type sendRequest struct {
	User string          `json:"user"`
	Data json.RawMessage `json:"data"`
}

func (a *api) send(w http.ResponseWriter, r *http.Request) {
	var req sendRequest
	if !a.decode(w, r, &req) {
		return
	}
	if !hasUser(w, req.User) || !hasData(w, req.Data) {
		return
	}
	if err := a.h.Send(r.Context(), req.User, req.Data); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, okBody)
}

// disconnectRequest is the body of /api/disconnect.
type disconnectRequest struct {
	User string `json:"user"`
}

func (a *api) disconnect(w http.ResponseWriter, r *http.Request) {
	var req disconnectRequest
	if !a.decode(w, r, &req) {
		return
	}
	if !hasUser(w, req.User) {
		return
	}
	if err := a.h.Disconnect(r.Context(), req.User); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, okBody)
}

type presenceResponse struct {
	Users []string `json:"users"`
}

func (a *api) presence(w http.ResponseWriter, r *http.Request) {
	ch := r.URL.Query().Get("channel")
	if !validChannel(w, ch) {
		return
	}
	users, err := a.h.Presence(r.Context(), ch)
	if err != nil {
		a.failLookup(w, r, err)
		return
	}
	if users == nil {
		users = []string{} // an empty channel is [], never null
	}
	writeJSON(w, http.StatusOK, presenceResponse{Users: users})
}

type onlineResponse struct {
	Online      bool `json:"online"`
	Connections int  `json:"connections"`
}

func (a *api) online(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	if !hasUser(w, user) {
		return
	}
	online, n, err := a.h.IsOnline(r.Context(), user)
	if err != nil {
		a.failLookup(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, onlineResponse{Online: online, Connections: n})
}

// failLookup answers an error of a presence query: the hub's own errors
// keep their status, anything else came from the PresenceStore and means
// the cluster view is unavailable (503), not that the request was wrong.
func (a *api) failLookup(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, hub.ErrBadChannel) || errors.Is(err, hub.ErrClosed) || errors.Is(err, hub.ErrBrokerDown) {
		a.fail(w, r, err)
		return
	}
	var he *hub.Error
	if errors.As(err, &he) {
		a.fail(w, r, err)
		return
	}
	a.log.Warn("httpapi: presence store failed", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusServiceUnavailable, "presence store unavailable: "+err.Error())
}

// statsResponse is hub.Stats with figures of the Go runtime an operator (or
// the bench harness) wants next to them.
type statsResponse struct {
	hub.Stats
	Goroutines     int    `json:"goroutines"`
	HeapAllocBytes uint64 `json:"heap_alloc_bytes"`
	HeapInuseBytes uint64 `json:"heap_inuse_bytes"`
	NumGC          uint32 `json:"num_gc"`
}

// stats answers hub.Stats plus runtime figures. runtime.ReadMemStats stops
// the world briefly, which is fine for an admin call and the reason it is
// not done per scrape of /metrics (the Go collector reads runtime/metrics).
func (a *api) stats(w http.ResponseWriter, r *http.Request) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	writeJSON(w, http.StatusOK, statsResponse{
		Stats:          a.h.Stats(),
		Goroutines:     runtime.NumGoroutine(),
		HeapAllocBytes: ms.HeapAlloc,
		HeapInuseBytes: ms.HeapInuse,
		NumGC:          ms.NumGC,
	})
}

type channelsResponse struct {
	Channels []hub.ChannelInfo `json:"channels"`
	// Next is the "after" value of the following page; empty on the last.
	Next string `json:"next"`
}

// channels pages through the local channels in name order. It asks the hub
// for one more than the page so it knows whether a next page exists.
func (a *api) channels(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultChannelsLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "limit must be a positive integer (at most "+strconv.Itoa(maxChannelsLimit)+")")
			return
		}
		limit = min(n, maxChannelsLimit)
	}
	list := a.h.Channels(q.Get("prefix"), q.Get("after"), limit+1)
	resp := channelsResponse{Channels: list}
	if len(list) > limit {
		resp.Channels = list[:limit]
		resp.Next = list[limit-1].Name
	}
	if resp.Channels == nil {
		resp.Channels = []hub.ChannelInfo{}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *api) metrics(w http.ResponseWriter, r *http.Request) { a.promh.ServeHTTP(w, r) }

func (a *api) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, okBody)
}

type readyResponse struct {
	Ready    bool `json:"ready"`
	Degraded bool `json:"degraded"`
}

// readyz is 503 once the hub drains, so a load balancer stops sending new
// clients; a degraded hub (Broker down) still serves its own connections
// and stays ready.
func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	resp := readyResponse{Ready: a.h.Ready(), Degraded: a.h.Degraded()}
	status := http.StatusOK
	if !resp.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, resp)
}

func validChannel(w http.ResponseWriter, ch string) bool {
	if ch == "" {
		writeError(w, http.StatusBadRequest, `"channel" is required`)
		return false
	}
	if !hub.ValidChannel(ch) {
		writeError(w, http.StatusBadRequest, "invalid channel name "+strconv.Quote(truncate(ch))+": 1 to 255 bytes, printable, no whitespace")
		return false
	}
	return true
}

func hasUser(w http.ResponseWriter, user string) bool {
	if user == "" {
		writeError(w, http.StatusBadRequest, `"user" is required`)
		return false
	}
	return true
}

// hasData rejects a missing "data"; a present one was already checked to
// be JSON by the decoder (json.RawMessage keeps its bytes as sent).
func hasData(w http.ResponseWriter, data json.RawMessage) bool {
	if len(data) == 0 {
		writeError(w, http.StatusBadRequest, `"data" is required (any JSON value)`)
		return false
	}
	return true
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
