package bench

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// floorSetupTimeout bounds a Floor connection's wait for its subscribe.
const floorSetupTimeout = 30 * time.Second

var errFloorClosed = errors.New("roost: bench: floor closed")

// Floor is the cost below which no fan-out goes on this machine, measured
// over the wire by the same harness as roost and the baseline: a server
// that, to publish, writes the pre-built push frame to every member with
// one write(2) each and does nothing else. A connection is answered until
// it subscribes; then its socket is taken from the Go runtime (the
// descriptor duplicated, the net.Conn closed) so that no poller is told of
// it, and it is only ever written to. An API publish runs bare write loops
// over shares of the members (floorWriters) before it is answered.
//
// It speaks only what the idle and broadcast scenarios use: one subscribe
// per connection (other commands before it get {"ok":true}), then
// POST /api/publish, GET /api/stats and GET /healthz. It keeps no queue,
// evicts no one, and never reads a member again; descriptors are closed by
// Close. Use it as the floor of a fan-out, never as a server.
type Floor struct {
	mux *http.ServeMux

	mu      sync.Mutex
	members map[string][]int // channel -> descriptors, guarded by mu
	closed  bool

	connections atomic.Int64
	published   atomic.Uint64
	deliveries  atomic.Uint64
}

// NewFloor returns a Floor; Close releases its descriptors.
func NewFloor() *Floor {
	f := &Floor{mux: http.NewServeMux(), members: map[string][]int{}}
	f.mux.HandleFunc("/ws", f.serveWS)
	f.mux.HandleFunc("POST /api/publish", f.servePublish)
	f.mux.HandleFunc("GET /api/stats", f.serveStats)
	f.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	return f
}

// ServeHTTP routes the WebSocket endpoint and the HTTP API.
func (f *Floor) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

// Close closes every member's descriptor. It is idempotent.
func (f *Floor) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	for _, fds := range f.members {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}
	f.members = nil
	return nil
}

// serveWS upgrades, answers commands until a subscribe, and then keeps only
// the socket's descriptor in the channel's member list.
func (f *Floor) serveWS(w http.ResponseWriter, r *http.Request) {
	conn, _, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return // gobwas/ws has answered with an HTTP error
	}
	defer conn.Close()
	for {
		conn.SetDeadline(time.Now().Add(floorSetupTimeout))
		msg, op, err := wsutil.ReadClientData(conn)
		if err != nil || op != ws.OpText {
			return
		}
		var cmd struct {
			ID      json.RawMessage `json:"id"`
			Op      string          `json:"op"`
			Channel string          `json:"channel"`
		}
		if json.Unmarshal(msg, &cmd) != nil {
			return
		}
		if cmd.Op == "subscribe" && validChannel(cmd.Channel) {
			_ = f.adopt(conn, cmd.Channel, floorFrame(okReply(cmd.ID)))
			return // a member's socket lives on in its descriptor
		}
		if wsutil.WriteServerText(conn, okReply(cmd.ID)) != nil {
			return
		}
	}
}

// adopt takes conn's socket from the runtime (conn is closed) into
// channel's member list and writes reply through it. The reply is written
// under f.mu, after the member is listed: a publish takes its snapshot of
// the members under f.mu too, so it either misses the member or follows
// the reply, and a publish the client makes once it has the reply reaches
// it.
func (f *Floor) adopt(conn net.Conn, channel string, reply []byte) error {
	fd, err := dupSocket(conn)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		syscall.Close(fd)
		return errFloorClosed
	}
	f.members[channel] = append(f.members[channel], fd)
	f.connections.Add(1)
	return writeAllFD(fd, reply, baselineWriteWait)
}

func (f *Floor) servePublish(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, baselineMaxBody)).Decode(&req); err != nil || !validChannel(req.Channel) || !json.Valid(req.Data) {
		httpError(w, http.StatusBadRequest, "bad request")
		return
	}
	f.mu.Lock()
	fds := f.members[req.Channel] // append-only: the prefix read here is never modified
	f.mu.Unlock()
	f.published.Add(1)
	f.writeAll(fds, floorFrame(encodePush(req.Channel, req.Data)))
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`)
}

// writeAll writes frame to every descriptor: floorWriters goroutines each
// loop over a contiguous share of the members with one write(2) each. A
// frame the kernel takes only part of is finished when the socket has
// room, so the stream stays valid; with 100-byte pushes into idle sockets
// that does not happen.
func (f *Floor) writeAll(fds []int, frame []byte) {
	writers := min(floorWriters(), max(len(fds), 1))
	share := (len(fds) + writers - 1) / writers
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ok uint64
			for _, fd := range fds[min(w*share, len(fds)):min((w+1)*share, len(fds))] {
				if writeAllFD(fd, frame, baselineWriteWait) == nil {
					ok++
				}
			}
			f.deliveries.Add(ok)
		}()
	}
	wg.Wait()
}

// floorWriters is how many write loops share a publish: twice the CPUs, as
// roost's default fan-out workers. On the 2-CPU machine of
// docs/benchmarks.md this was the floor's cheapest setting: 1, 2 and 4
// contiguous loops cost 11.1, 11.4 and 10.0 ms of CPU per 1,000 deliveries
// to 18,000 members, and striping members over the loops instead of
// contiguous shares cost 14.2 (more reader wake-ups).
func floorWriters() int { return 2 * runtime.GOMAXPROCS(0) }

// floorFrame frames payload as one unmasked text message, as a server
// sends it.
func floorFrame(payload []byte) []byte { return ws.MustCompileFrame(ws.NewTextFrame(payload)) }

func (f *Floor) serveStats(w http.ResponseWriter, _ *http.Request) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(BaselineStats{
		Connections: f.connections.Load(),
		Published:   f.published.Load(),
		Deliveries:  f.deliveries.Load(),
		Goroutines:  runtime.NumGoroutine(),
		HeapAlloc:   ms.HeapAlloc,
		HeapInuse:   ms.HeapInuse,
		Sys:         ms.Sys,
	})
}
