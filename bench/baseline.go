package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/gorilla/websocket"
)

// The baseline's timing constants are the gorilla chat example's.
const (
	baselineWriteWait  = 10 * time.Second
	baselinePongWait   = 60 * time.Second
	baselinePingPeriod = baselinePongWait * 9 / 10
	baselineMaxMessage = 64 << 10
	baselineSendBuffer = 256
	baselineMaxBody    = 1 << 20
	baselineMaxChannel = 255
)

// Baseline is the design most WebSocket services ship, built to be measured
// against roost: gorilla/websocket, one read goroutine and one write
// goroutine per connection, and one hub goroutine that owns every channel's
// member set and fans messages out over buffered send channels (the gorilla
// chat example's shape). It speaks roost's client protocol and the subset of
// roost's HTTP API the harness uses, so one harness run measures either
// server. It is meant to be correct and reasonable, not deliberately slow: a
// push is encoded once per publish and shared, and a client whose send buffer
// is full is dropped, as in the chat example.
//
// Routes: GET /ws (upgrade; user from ?user=), POST /api/publish, GET
// /api/stats, GET /healthz. The zero value is not usable; call NewBaseline.
type Baseline struct {
	upgrader websocket.Upgrader
	mux      *http.ServeMux

	register   chan *baselineClient
	unregister chan *baselineClient
	commands   chan baselineCommand
	quit       chan struct{}
	done       chan struct{}
	closeOnce  sync.Once

	connections   atomic.Int64
	subscriptions atomic.Int64
	channels      atomic.Int64
	published     atomic.Uint64
	deliveries    atomic.Uint64
	evictions     atomic.Uint64
}

// baselineClient is one connection: the hub goroutine alone sends on and
// closes send, so no send can hit a closed channel.
type baselineClient struct {
	b    *Baseline
	conn *websocket.Conn
	user string
	send chan []byte
	subs map[string]struct{} // owned by the hub goroutine
}

// baselineCommand is a request to the hub goroutine. reply, when set,
// receives the presence result; c is nil for HTTP API publishes.
type baselineCommand struct {
	c       *baselineClient
	id      json.RawMessage
	op      string
	channel string
	push    []byte
	reply   chan []string
}

// NewBaseline starts the baseline's hub goroutine. Close stops it.
func NewBaseline() *Baseline {
	b := &Baseline{
		upgrader:   websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024, CheckOrigin: func(*http.Request) bool { return true }},
		mux:        http.NewServeMux(),
		register:   make(chan *baselineClient),
		unregister: make(chan *baselineClient),
		commands:   make(chan baselineCommand, 1024),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	b.mux.HandleFunc("/ws", b.serveWS)
	b.mux.HandleFunc("POST /api/publish", b.servePublish)
	b.mux.HandleFunc("GET /api/stats", b.serveStats)
	b.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	go b.run()
	return b
}

// ServeHTTP routes the WebSocket endpoint and the HTTP API.
func (b *Baseline) ServeHTTP(w http.ResponseWriter, r *http.Request) { b.mux.ServeHTTP(w, r) }

// Close stops the hub goroutine and closes every connection's send channel,
// which makes its write goroutine send a close frame and end. It is
// idempotent and does not wait for the connection goroutines.
func (b *Baseline) Close() error {
	b.closeOnce.Do(func() { close(b.quit) })
	<-b.done
	return nil
}

// run is the hub goroutine: it owns channels and every client's subs.
func (b *Baseline) run() {
	defer close(b.done)
	clients := make(map[*baselineClient]struct{})
	channels := make(map[string]map[*baselineClient]struct{})
	drop := func(c *baselineClient) {
		if _, ok := clients[c]; !ok {
			return
		}
		for ch := range c.subs {
			b.leave(channels, c, ch)
		}
		delete(clients, c)
		close(c.send)
		b.connections.Add(-1)
	}
	// deliver queues msg for c without blocking; a full buffer drops the
	// client, as the chat example does.
	deliver := func(c *baselineClient, msg []byte) bool {
		select {
		case c.send <- msg:
			return true
		default:
			b.evictions.Add(1)
			drop(c)
			return false
		}
	}
	for {
		select {
		case <-b.quit:
			for c := range clients {
				drop(c)
			}
			return
		case c := <-b.register:
			clients[c] = struct{}{}
			b.connections.Add(1)
		case c := <-b.unregister:
			drop(c)
		case cmd := <-b.commands:
			if cmd.c != nil {
				if _, ok := clients[cmd.c]; !ok {
					if cmd.reply != nil {
						close(cmd.reply)
					}
					continue
				}
			}
			switch cmd.op {
			case "subscribe":
				if _, ok := cmd.c.subs[cmd.channel]; !ok {
					members := channels[cmd.channel]
					if members == nil {
						members = make(map[*baselineClient]struct{})
						channels[cmd.channel] = members
						b.channels.Add(1)
					}
					members[cmd.c] = struct{}{}
					cmd.c.subs[cmd.channel] = struct{}{}
					b.subscriptions.Add(1)
				}
				deliver(cmd.c, okReply(cmd.id))
			case "unsubscribe":
				if _, ok := cmd.c.subs[cmd.channel]; ok {
					b.leave(channels, cmd.c, cmd.channel)
					delete(cmd.c.subs, cmd.channel)
				}
				deliver(cmd.c, okReply(cmd.id))
			case "presence":
				seen := make(map[string]struct{})
				users := []string{}
				for m := range channels[cmd.channel] {
					if _, ok := seen[m.user]; !ok {
						seen[m.user] = struct{}{}
						users = append(users, m.user)
					}
				}
				cmd.reply <- users
			case "publish":
				b.published.Add(1)
				for m := range channels[cmd.channel] {
					if deliver(m, cmd.push) {
						b.deliveries.Add(1)
					}
				}
				if cmd.c != nil {
					deliver(cmd.c, okReply(cmd.id))
				}
			case "reply":
				deliver(cmd.c, cmd.push)
			}
		}
	}
}

// leave removes c from channel ch's member set (not from c.subs).
func (b *Baseline) leave(channels map[string]map[*baselineClient]struct{}, c *baselineClient, ch string) {
	members := channels[ch]
	delete(members, c)
	b.subscriptions.Add(-1)
	if len(members) == 0 {
		delete(channels, ch)
		b.channels.Add(-1)
	}
}

// submit hands cmd to the hub goroutine unless the baseline is closing.
func (b *Baseline) submit(cmd baselineCommand) bool {
	select {
	case b.commands <- cmd:
		return true
	case <-b.quit:
		return false
	}
}

func (b *Baseline) serveWS(w http.ResponseWriter, r *http.Request) {
	conn, err := b.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	user := r.URL.Query().Get("user")
	if user == "" {
		user = "anon-" + strconv.FormatUint(uint64(time.Now().UnixNano()), 36)
	}
	c := &baselineClient{b: b, conn: conn, user: user, send: make(chan []byte, baselineSendBuffer), subs: make(map[string]struct{})}
	select {
	case b.register <- c:
	case <-b.quit:
		conn.Close()
		return
	}
	go c.writePump()
	go c.readPump()
}

// readPump decodes commands and hands them to the hub goroutine.
func (c *baselineClient) readPump() {
	defer func() {
		select {
		case c.b.unregister <- c:
		case <-c.b.quit:
		}
		c.conn.Close()
	}()
	c.conn.SetReadLimit(baselineMaxMessage)
	c.conn.SetReadDeadline(time.Now().Add(baselinePongWait))
	c.conn.SetPongHandler(func(string) error { return c.conn.SetReadDeadline(time.Now().Add(baselinePongWait)) })
	for {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		c.conn.SetReadDeadline(time.Now().Add(baselinePongWait))
		if !c.handle(msg) {
			return
		}
	}
}

// handle executes one client command; it returns false once the hub is gone.
func (c *baselineClient) handle(msg []byte) bool {
	var cmd struct {
		ID      json.RawMessage `json:"id"`
		Op      string          `json:"op"`
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(msg, &cmd); err != nil {
		return c.b.submit(baselineCommand{c: c, op: "reply", push: errorReply(nil, 400, "bad json")})
	}
	switch cmd.Op {
	case "ping":
		return c.b.submit(baselineCommand{c: c, op: "reply", push: okReply(cmd.ID)})
	case "subscribe", "unsubscribe", "presence", "publish":
	default:
		return c.b.submit(baselineCommand{c: c, op: "reply", push: errorReply(cmd.ID, 400, "unknown op")})
	}
	if !validChannel(cmd.Channel) {
		return c.b.submit(baselineCommand{c: c, op: "reply", push: errorReply(cmd.ID, 400, "bad channel")})
	}
	switch cmd.Op {
	case "publish":
		if len(cmd.Data) == 0 || !json.Valid(cmd.Data) {
			return c.b.submit(baselineCommand{c: c, op: "reply", push: errorReply(cmd.ID, 400, "bad data")})
		}
		return c.b.submit(baselineCommand{c: c, id: cmd.ID, op: "publish", channel: cmd.Channel, push: encodePush(cmd.Channel, cmd.Data)})
	case "presence":
		reply := make(chan []string, 1)
		if !c.b.submit(baselineCommand{c: c, op: "presence", channel: cmd.Channel, reply: reply}) {
			return false
		}
		users, ok := <-reply
		if !ok {
			return false
		}
		res, _ := json.Marshal(struct {
			Users []string `json:"users"`
		}{users})
		return c.b.submit(baselineCommand{c: c, op: "reply", push: resultReply(cmd.ID, res)})
	default:
		return c.b.submit(baselineCommand{c: c, id: cmd.ID, op: cmd.Op, channel: cmd.Channel})
	}
}

// writePump writes what the hub queued, one message per frame, and pings.
func (c *baselineClient) writePump() {
	ticker := time.NewTicker(baselinePingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case msg, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(baselineWriteWait))
			if !ok {
				c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4008, "too slow"))
				return
			}
			if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(baselineWriteWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

func (b *Baseline) servePublish(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, baselineMaxBody)).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, "bad json")
		return
	}
	if !validChannel(req.Channel) {
		httpError(w, http.StatusBadRequest, "bad channel")
		return
	}
	if len(req.Data) == 0 || !json.Valid(req.Data) {
		httpError(w, http.StatusBadRequest, "bad data")
		return
	}
	if !b.submit(baselineCommand{op: "publish", channel: req.Channel, push: encodePush(req.Channel, req.Data)}) {
		httpError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`)
}

// BaselineStats is what the baseline's GET /api/stats answers: roost's
// counter names where they mean the same, plus the Go runtime figures the
// harness reports.
type BaselineStats struct {
	Connections   int64  `json:"connections"`
	Channels      int64  `json:"channels"`
	Subscriptions int64  `json:"subscriptions"`
	Published     uint64 `json:"published"`
	Deliveries    uint64 `json:"deliveries"`
	Evictions     uint64 `json:"evictions"`
	Goroutines    int    `json:"goroutines"`
	HeapAlloc     uint64 `json:"heap_alloc"`
	HeapInuse     uint64 `json:"heap_inuse"`
	Sys           uint64 `json:"sys"`
}

// Stats returns the baseline's counters and runtime figures.
func (b *Baseline) Stats() BaselineStats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return BaselineStats{
		Connections:   b.connections.Load(),
		Channels:      b.channels.Load(),
		Subscriptions: b.subscriptions.Load(),
		Published:     b.published.Load(),
		Deliveries:    b.deliveries.Load(),
		Evictions:     b.evictions.Load(),
		Goroutines:    runtime.NumGoroutine(),
		HeapAlloc:     ms.HeapAlloc,
		HeapInuse:     ms.HeapInuse,
		Sys:           ms.Sys,
	}
}

func (b *Baseline) serveStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(b.Stats())
}

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(errorReply(nil, status, msg))
}

// validChannel applies roost's channel rule: 1 to 255 bytes, printable, no
// whitespace.
func validChannel(s string) bool {
	if s == "" || len(s) > baselineMaxChannel {
		return false
	}
	for _, r := range s {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// encodePush builds {"channel":C,"data":D} once per publish.
func encodePush(channel string, data []byte) []byte {
	q, _ := json.Marshal(channel)
	buf := make([]byte, 0, len(q)+len(data)+21)
	buf = append(buf, `{"channel":`...)
	buf = append(buf, q...)
	buf = append(buf, `,"data":`...)
	buf = append(buf, data...)
	return append(buf, '}')
}

func okReply(id json.RawMessage) []byte {
	return append(append([]byte(`{"id":`), idOrNull(id)...), `,"ok":true}`...)
}

func resultReply(id json.RawMessage, result []byte) []byte {
	buf := append(append([]byte(`{"id":`), idOrNull(id)...), `,"ok":true,"result":`...)
	return append(append(buf, result...), '}')
}

func errorReply(id json.RawMessage, code int, msg string) []byte {
	var buf bytes.Buffer
	if id != nil {
		buf.WriteString(`{"id":`)
		buf.Write(idOrNull(id))
		buf.WriteString(`,"error":`)
	} else {
		buf.WriteString(`{"error":`)
	}
	e, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg})
	buf.Write(e)
	buf.WriteByte('}')
	return buf.Bytes()
}

func idOrNull(id json.RawMessage) []byte {
	if len(id) == 0 {
		return []byte("null")
	}
	return id
}
