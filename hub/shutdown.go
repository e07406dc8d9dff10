package hub

import (
	"context"
	"math"
	"time"

	"github.com/roost-rt/roost/shard"
)

// drainTick is the pacing step of Shutdown's closes.
const drainTick = 10 * time.Millisecond

// Shutdown drains the Hub: Ready turns false and upgrades are refused with
// 503, then every connection is sent close 4001 ("reconnect elsewhere"),
// paced at Config.DrainRate per second or, when that is zero, spread over
// 80% of the time left before ctx's deadline, so that a rolling deploy does
// not make every client reconnect at once. It waits for the clients to
// answer their close frames, then stops the poller, the fan-out workers, the
// sweeper and the Broker. When ctx ends first, the remaining connections are
// closed at once and ctx's error is returned.
//
// Shutdown is idempotent: later calls return the first call's result
// without waiting for it. It does not wait for HTTP handlers, which belong
// to the caller's http.Server.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.shutdownOnce.Do(func() { h.shutdownErr = h.shutdown(ctx) })
	return h.shutdownErr
}

func (h *Hub) shutdown(ctx context.Context) error {
	h.draining.Store(true)
	var conns []*conn
	for i := 0; i < shard.NumShards; i++ {
		h.reg.RangeShard(i, func(e *shard.Conn[*conn]) bool {
			conns = append(conns, e.Value)
			return true
		})
	}
	err := h.drain(ctx, conns)
	if err == nil {
		err = h.waitClosing(ctx)
	}
	// Whatever is left now closes at once.
	for i := 0; i < shard.NumShards; i++ {
		h.reg.RangeShard(i, func(e *shard.Conn[*conn]) bool {
			e.Value.kill(ReasonShutdown)
			return true
		})
	}
	h.expireClosing(0)
	h.closed.Store(true)
	close(h.stop)
	h.fan.close()
	h.wg.Wait()
	if h.cfg.Broker != nil {
		_ = h.cfg.Broker.Close()
	}
	if perr := h.poller.Close(); err == nil {
		err = perr
	}
	return err
}

// drain sends close 4001 to conns at the configured pace.
func (h *Hub) drain(ctx context.Context, conns []*conn) error {
	rate := h.cfg.DrainRate
	if rate <= 0 {
		rate = math.Inf(1)
		if dl, ok := ctx.Deadline(); ok {
			if window := time.Until(dl) * 8 / 10; window > drainTick && len(conns) > 0 {
				rate = float64(len(conns)) / window.Seconds()
			}
		}
	}
	t := time.NewTicker(drainTick)
	defer t.Stop()
	// The number closed so far follows the clock, not the count of ticks,
	// so a late tick (a busy machine) does not slow the drain down.
	start, done := time.Now(), 0
	for len(conns) > 0 {
		n := len(conns)
		if !math.IsInf(rate, 1) {
			due := 1 + int(rate*time.Since(start).Seconds()) // the first goes out at once
			n = min(len(conns), max(0, due-done))
		}
		done += n
		for _, c := range conns[:n] {
			c.closeGraceful(ReasonShutdown, "server shutting down")
		}
		conns = conns[n:]
		if len(conns) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// waitClosing waits until every close handshake finished (the sweeper
// finishes unanswered ones after closeHandshakeTimeout) or ctx ends.
func (h *Hub) waitClosing(ctx context.Context) error {
	t := time.NewTicker(drainTick)
	defer t.Stop()
	for h.numClosing() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
