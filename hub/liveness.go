package hub

import (
	"errors"
	"time"

	"github.com/roost-rt/roost/hub/internal/wire"
	"github.com/roost-rt/roost/shard"
)

var errNoHeartbeat = errors.New("roost: no frame from the client within the idle timeout")

// pingFrame is the server's ping, shared by every connection.
var pingFrame = wire.AppendFrame(nil, wire.KindPing, nil)

// sweep is the liveness loop: once per sweepInterval it walks the registry
// shard by shard (each shard locked on its own, never the whole registry),
// pings connections silent for PingInterval, evicts those silent past
// IdleTimeout (a half-open TCP connection ends this way), evicts
// connections whose queued output stalled past WriteTimeout, closes those
// whose token expired without a refresh, and finishes close handshakes the
// client never answered. No connection has a timer or goroutine of its own.
func (h *Hub) sweep() {
	defer h.wg.Done()
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	s := getScratch()
	defer putScratch(s)
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		for i := 0; i < shard.NumShards; i++ {
			h.reg.RangeShard(i, func(e *shard.Conn[*conn]) bool {
				h.check(e, now, s)
				return true
			})
		}
		s.flushStats(h)
		h.expireClosing(now)
	}
}

// check applies the liveness rules to one connection. It reads the
// registry entry e, not c.entry, which a connection being registered may
// not have set yet.
func (h *Hub) check(e *shard.Conn[*conn], now int64, s *ioScratch) {
	c, cfg := e.Value, &h.cfg
	if c.stalled(now) {
		c.evict(ReasonWriteTimeout, errStalled)
		return
	}
	if exp := c.expiresAt.Load(); exp != 0 && now > exp+int64(cfg.ExpiryGrace) {
		c.closeGraceful(ReasonTokenExpired, "token expired")
		return
	}
	idle := now - e.LastActive()
	if cfg.IdleTimeout > 0 && idle > int64(cfg.IdleTimeout) {
		c.evict(ReasonNoHeartbeat, errNoHeartbeat)
		return
	}
	if cfg.PingInterval > 0 && idle > int64(cfg.PingInterval) {
		if p := c.pingedAt.Load(); p == 0 || now-p > int64(cfg.PingInterval) {
			c.pingedAt.Store(now)
			c.send(pingFrame, s)
		}
	}
}

// trackClosing adds c, with the deadline of its close handshake (unix
// nanos), to the set of connections in a close handshake, or removes it when
// deadline is 0. Callers hold c.mu (lock order: conn.mu, then
// Hub.closingMu), so adding and removing one conn cannot be reordered.
func (h *Hub) trackClosing(c *conn, deadline int64) {
	h.closingMu.Lock()
	if deadline != 0 {
		h.closing[c] = deadline
	} else {
		delete(h.closing, c)
	}
	h.closingMu.Unlock()
}

// expireClosing finishes close handshakes past their deadline (all of them
// when now is 0).
func (h *Hub) expireClosing(now int64) {
	var due []*conn
	h.closingMu.Lock()
	for c, deadline := range h.closing {
		if now == 0 || now > deadline {
			due = append(due, c)
		}
	}
	h.closingMu.Unlock()
	for _, c := range due {
		c.finish(ReasonClientClosed) // keeps the reason closeGraceful recorded
	}
}

// numClosing returns how many close handshakes are in progress.
func (h *Hub) numClosing() int {
	h.closingMu.Lock()
	defer h.closingMu.Unlock()
	return len(h.closing)
}
