package hub

import (
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/gobwas/ws"

	"github.com/roost-rt/roost/hub/internal/wire"
	"github.com/roost-rt/roost/netpoll"
)

// openGrants is the identity of open mode: every channel, private ones too.
var openGrants = []string{"*"}

// ServeHTTP upgrades the request to a WebSocket connection and registers it
// with the poller; the handler's goroutine returns at once, and the
// connection owns no goroutine from then on. On Linux the hijacked socket
// is taken from the Go runtime (its descriptor duplicated once and the
// net.Conn closed, see ownSocket), so it keeps nothing of the runtime's.
//
// Refusals are plain HTTP answers with a JSON error body: 503 while shutting
// down or at Config.MaxConnections, 403 for a refused Origin, 401 or 403 from
// Config.Authenticate, 400 for a malformed handshake, and 426 with
// Sec-WebSocket-Version for an unsupported protocol version (RFC 6455
// section 4.2.2).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		h.refuse(w, hsShutdown, http.StatusServiceUnavailable, "server is shutting down")
		return
	}
	if limit := h.cfg.MaxConnections; limit > 0 {
		n := h.pending.Add(1)
		defer h.pending.Add(-1)
		if n+h.reg.Counts().Conns > int64(limit) {
			h.refuse(w, hsLimit, http.StatusServiceUnavailable, "connection limit reached")
			return
		}
	}
	if f := h.cfg.CheckOrigin; f != nil && !f(r) {
		h.refuse(w, hsOrigin, http.StatusForbidden, "origin not allowed")
		return
	}
	id, err := h.authenticate(r)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Code: http.StatusUnauthorized, Message: "unauthorized"}
		}
		reason := hsUnauthorized
		switch e.Code {
		case http.StatusForbidden:
			reason = hsForbidden
		case http.StatusBadRequest:
			reason = hsBadRequest
		}
		h.refuse(w, reason, e.Code, e.Message)
		return
	}
	remote := r.RemoteAddr
	if f := h.cfg.RemoteAddr; f != nil {
		remote = f(r)
	}
	up := ws.HTTPUpgrader{Timeout: h.cfg.HandshakeTimeout}
	nc, rw, _, err := up.Upgrade(r, w)
	if err != nil {
		// gobwas/ws has answered 400 or 426 itself on the hijacked socket,
		// unless the client did not take the answer within the timeout.
		if nc != nil {
			_ = nc.Close()
		}
		reason := hsBadRequest
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			reason = hsTimeout
		}
		h.handshakeFailed(reason)
		return
	}
	var leftover []byte
	if rw != nil && rw.Reader.Buffered() > 0 {
		leftover, _ = rw.Reader.Peek(rw.Reader.Buffered())
	}
	if err := h.register(nc, leftover, id, remote); err != nil {
		_ = nc.Close()
		h.log.Warn("cannot register connection", "remote", remote, "err", err)
	}
}

// authenticate runs Config.Authenticate, or in open mode takes the user from
// ?user= (or generates one).
func (h *Hub) authenticate(r *http.Request) (Identity, error) {
	if f := h.cfg.Authenticate; f != nil {
		id, err := f(r)
		if err == nil && !wire.ValidChannel(id.User) {
			err = &Error{Code: http.StatusUnauthorized, Message: "identity has no valid user id"}
		}
		return id, err
	}
	// Clone: the parsed query aliases the request line, which the
	// registry would otherwise keep alive for the connection's lifetime.
	user := strings.Clone(r.URL.Query().Get("user"))
	if user == "" {
		user = h.anonPrefix + strconv.FormatUint(h.anonSeq.Add(1), 10)
	} else if !wire.ValidChannel(user) {
		return Identity{}, &Error{Code: http.StatusBadRequest, Message: "invalid user id: 1-255 printable bytes without spaces"}
	}
	return Identity{User: user, Channels: openGrants}, nil
}

func (h *Hub) refuse(w http.ResponseWriter, reason, code int, msg string) {
	h.handshakeFailed(reason)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Connection", "close")
	w.WriteHeader(code)
	_, _ = w.Write(wire.AppendError(nil, 0, false, code, msg))
}

func (h *Hub) handshakeFailed(reason int) {
	h.st.handshake[reason].Add(1)
	if f := h.cfg.OnHandshakeFailure; f != nil {
		f(handshakeNames[reason])
	}
}

// register makes an upgraded socket a roost connection: registry entry,
// bytes the client sent right after the handshake, then the poller (or, for
// a connection with no raw descriptor such as TLS, two goroutines). The
// leftover bytes are parsed before the poller knows the descriptor, so one
// goroutine at a time handles the connection's input from the start.
func (h *Hub) register(nc net.Conn, leftover []byte, id Identity, remote string) error {
	c := &conn{h: h, nc: nc, fd: -1}
	sc, polled := nc.(syscall.Conn)
	if polled {
		rc, err := sc.SyscallConn()
		if err != nil {
			return err
		}
		if netpoll.RawDescriptors && !h.runtimeSockets {
			if fd := ownSocket(nc, rc); fd >= 0 {
				c.nc, c.fd = nil, int32(fd)
			}
		}
		if n := h.cfg.SendBufferBytes; n > 0 {
			if err := c.setSendBuffer(rc, n); err != nil {
				c.closeSocket()
				return err
			}
		}
	}
	if len(id.Channels) == 1 && &id.Channels[0] == &openGrants[0] {
		c.grants.Store(&openGrants) // open mode: one shared slice, no allocation
	} else {
		grants := id.Channels
		c.grants.Store(&grants)
	}
	if !id.ExpiresAt.IsZero() {
		c.expiresAt.Store(id.ExpiresAt.UnixNano())
	}
	// c becomes reachable through the registry inside Add; holding c.mu
	// until c.entry is set makes every other goroutine, which locks c.mu
	// before it reads c.entry, see it set.
	c.mu.Lock()
	entry, first := h.reg.Add(id.User, remote, c) // active as of now
	c.entry = entry
	c.mu.Unlock()
	if first && h.cfg.Presence != nil {
		h.cfg.Presence.Connected(id.User)
	}
	if !polled {
		h.registerStream(c, leftover)
		if f := h.cfg.OnConnect; f != nil {
			f(c.info())
		}
		return nil
	}
	if len(leftover) > 0 {
		s := getScratch()
		c.consume(leftover, s)
		s.flushStats(h)
		putScratch(s)
	}
	// Under c.mu: the leftover bytes may have ended c already, and then
	// teardown has closed the descriptor, whose number may belong to
	// another socket by now. An event that arrives at once waits for c.mu
	// on its worker.
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return nil
	}
	var desc *netpoll.Desc
	var err error
	if c.nc == nil {
		desc, err = h.poller.AddFd(int(c.fd), c)
	} else {
		desc, err = h.poller.Add(sc, c)
	}
	if err != nil {
		c.mu.Unlock()
		c.kill(ReasonInternal)
		return err
	}
	c.desc = desc
	want := c.wantWrite
	c.mu.Unlock()
	if want {
		_ = desc.WantWrite()
	}
	if f := h.cfg.OnConnect; f != nil {
		f(c.info())
	}
	return nil
}

// setSendBuffer sets SO_SNDBUF on c's socket before it is registered.
func (c *conn) setSendBuffer(rc syscall.RawConn, n int) error {
	if c.nc == nil {
		return os.NewSyscallError("setsockopt", syscall.SetsockoptInt(int(c.fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, n))
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, n)
	}); err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt", serr)
}

// closeSocket closes c's socket, whoever owns it. teardown calls it once
// state is stateClosed; register, for a conn that never reached the
// registry (ServeHTTP closes nc as well; closing it twice is harmless).
func (c *conn) closeSocket() {
	if c.nc == nil {
		_ = syscall.Close(int(c.fd))
		return
	}
	_ = c.nc.Close()
}

func (h *Hub) accepting() bool { return !h.closed.Load() }
