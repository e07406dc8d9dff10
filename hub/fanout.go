package hub

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/roost-rt/roost/hub/internal/wire"
	"github.com/roost-rt/roost/shard"
)

// PublishOption adjusts one Publish call.
type PublishOption func(*publishOptions)

type publishOptions struct {
	excludeUser string
}

// ExcludeUser skips user's connections when the message is delivered, on
// every node; a backend publishing on a user's behalf uses it so the user
// does not get its own message back.
func ExcludeUser(user string) PublishOption {
	return func(o *publishOptions) { o.excludeUser = user }
}

// Publish sends data, one JSON value, to every member of channel as the push
// {"channel":"...","data":<data>}. The push is encoded into one WebSocket
// frame whose bytes every recipient shares. Publish returns once every local
// member has the frame (in the kernel or in its bounded queue), so messages
// from one publisher arrive in order; with a Broker it then hands the
// message to the other nodes and returns an error wrapping ErrBrokerDown if
// that failed (local members got it all the same).
func (h *Hub) Publish(ctx context.Context, channel string, data []byte, opts ...PublishOption) error {
	if !h.accepting() {
		return ErrClosed
	}
	if !wire.ValidChannel(channel) {
		return ErrBadChannel
	}
	if !wire.ValidJSON(data) {
		return ErrBadData
	}
	var o publishOptions
	for _, opt := range opts {
		opt(&o)
	}
	return h.publish(ctx, channel, data, o.excludeUser)
}

// publishLocal counts a publication and fans it out to this node's members.
func (h *Hub) publishLocal(channel string, data []byte, exclude string) {
	h.st.published.Add(1)
	h.fan.publish(channel, data, exclude)
}

// publish delivers locally, then through the Broker. channel and data are
// already validated.
func (h *Hub) publish(ctx context.Context, channel string, data []byte, exclude string) error {
	h.publishLocal(channel, data, exclude)
	if h.cfg.Broker == nil {
		return nil
	}
	p := Publication{Channel: channel, Data: bytes.Clone(data), ExcludeUser: exclude}
	if err := h.cfg.Broker.Publish(ctx, p); err != nil {
		return h.brokerFailed(err)
	}
	return nil
}

func (h *Hub) brokerFailed(err error) error {
	h.st.brokerErrors.Add(1)
	if eh := h.cfg.ErrorHandler; eh != nil {
		eh(ConnInfo{}, ReasonInternal, err)
	}
	return fmt.Errorf("%w: %w", ErrBrokerDown, err)
}

// Send delivers data, one JSON value, to every connection of user as the
// push {"data":<data>}, on this node and, with a Broker, on the others.
func (h *Hub) Send(ctx context.Context, user string, data []byte) error {
	if !h.accepting() {
		return ErrClosed
	}
	if !wire.ValidJSON(data) {
		return ErrBadData
	}
	h.sendLocal(user, data)
	if h.cfg.Broker != nil {
		if err := h.cfg.Broker.Send(ctx, user, bytes.Clone(data)); err != nil {
			return h.brokerFailed(err)
		}
	}
	return nil
}

func (h *Hub) sendLocal(user string, data []byte) {
	conns := h.reg.UserConns(user, nil)
	if len(conns) == 0 {
		return
	}
	frame := framed(wire.AppendUserPush(frameBuf(len(data)+16), data))
	s := getScratch()
	for _, e := range conns {
		if e.Value.send(frame, s) {
			s.delivered++
		}
	}
	s.flushStats(h)
	putScratch(s)
}

// Disconnect closes every connection of user with 4502, on this node and,
// with a Broker, on the others.
func (h *Hub) Disconnect(ctx context.Context, user string) error {
	if !h.accepting() {
		return ErrClosed
	}
	h.disconnectLocal(user)
	if h.cfg.Broker != nil {
		if err := h.cfg.Broker.Disconnect(ctx, user); err != nil {
			return h.brokerFailed(err)
		}
	}
	return nil
}

func (h *Hub) disconnectLocal(user string) {
	for _, e := range h.reg.UserConns(user, nil) {
		e.Value.closeGraceful(ReasonDisconnected, "disconnected")
	}
}

// Subscribe joins the connection with id connID to channel on the server's
// initiative. The AuthorizeSubscribe hook is not consulted.
func (h *Hub) Subscribe(connID uint64, channel string) error {
	if !wire.ValidChannel(channel) {
		return ErrBadChannel
	}
	e := h.reg.Get(connID)
	if e == nil {
		return ErrNotFound
	}
	if err := h.join(e, channel); err != nil {
		return ErrNotFound
	}
	return nil
}

// Unsubscribe removes the connection with id connID from channel.
func (h *Hub) Unsubscribe(connID uint64, channel string) error {
	e := h.reg.Get(connID)
	if e == nil {
		return ErrNotFound
	}
	h.leave(e, channel)
	return nil
}

// maxFrameHeader is the longest header of an unmasked server frame: 2 bytes
// plus a 64-bit length (RFC 6455 section 5.2).
const maxFrameHeader = 10

// frameBuf returns a buffer whose first maxFrameHeader bytes are room for
// the frame header and whose capacity fits a payload of about hint bytes.
// Append the payload to it and pass it to framed.
func frameBuf(hint int) []byte { return make([]byte, maxFrameHeader, maxFrameHeader+hint) }

// framed writes the text-frame header for the payload after buf's first
// maxFrameHeader bytes into the room just before it, and returns the frame:
// one allocation per message, and the payload is never copied.
func framed(buf []byte) []byte {
	var h [maxFrameHeader]byte
	hdr := wire.AppendFrameHeader(h[:0], wire.KindText, len(buf)-maxFrameHeader)
	start := maxFrameHeader - len(hdr)
	copy(buf[start:], hdr)
	return buf[start:]
}

// fanout is the worker pool that writes a published frame to a channel's
// members. A publish is split into batches of Config.FanoutBatch members;
// workers take batches from one queue, and the publishing goroutine works
// through batches too rather than only waiting.
type fanout struct {
	h     *Hub
	batch int
	tasks chan fanTask
	wg    sync.WaitGroup

	// mu is held for reading by every publish in flight and for writing by
	// close, so that tasks is never sent on after it is closed.
	mu     sync.RWMutex
	closed bool
}

type fanTask struct {
	job   *fanJob
	conns []*shard.Conn[*conn]
}

// fanJob is one publish being delivered.
type fanJob struct {
	frame   []byte
	exclude string
	done    sync.WaitGroup
}

func newFanout(h *Hub, workers int) *fanout {
	f := &fanout{h: h, batch: h.cfg.FanoutBatch, tasks: make(chan fanTask, 4*workers)}
	for range workers {
		f.wg.Add(1)
		go f.work()
	}
	return f
}

func (f *fanout) work() {
	defer f.wg.Done()
	s := getScratch()
	defer putScratch(s)
	for t := range f.tasks {
		f.deliver(t.job.frame, t.job.exclude, t.conns, s)
		t.job.done.Done()
	}
}

// close stops the workers after the queued batches are written.
func (f *fanout) close() {
	f.mu.Lock()
	if !f.closed {
		f.closed = true
		close(f.tasks)
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// publish writes the push for (channel, data) to every local member of
// channel except exclude's connections, and returns when all have it. A
// channel of at most one batch is written by the publisher itself, with no
// job, no hand-off and no fan-out lock.
func (f *fanout) publish(channel string, data []byte, exclude string) {
	snap := f.h.reg.Members(channel)
	n := snap.Len()
	if n == 0 {
		return
	}
	obs := f.h.cfg.OnFanout
	var start time.Time
	if obs != nil {
		start = time.Now()
	}
	frame := framed(wire.AppendPush(frameBuf(len(channel)+len(data)+32), channel, data))
	s := getScratch()
	if n <= f.batch {
		for i := 0; i < snap.NumChunks(); i++ {
			f.deliver(frame, exclude, snap.Chunk(i), s)
		}
	} else if !f.handOff(snap, frame, exclude, s) {
		putScratch(s)
		return
	}
	putScratch(s)
	if obs != nil {
		obs(n, time.Since(start))
	}
}

// handOff cuts snap into batches for the workers, writing a batch itself
// when every worker is busy, and waits for all of them. It reports false,
// having written nothing, once the fan-out is closed.
func (f *fanout) handOff(snap *shard.Snapshot[*conn], frame []byte, exclude string, s *ioScratch) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return false
	}
	job := &fanJob{frame: frame, exclude: exclude}
	for i := 0; i < snap.NumChunks(); i++ {
		chunk := snap.Chunk(i)
		for len(chunk) > 0 {
			k := min(f.batch, len(chunk))
			batch := chunk[:k]
			chunk = chunk[k:]
			job.done.Add(1)
			select {
			case f.tasks <- fanTask{job: job, conns: batch}:
			default: // every worker is busy: the publisher writes this batch itself
				f.deliver(frame, exclude, batch, s)
				job.done.Done()
			}
		}
	}
	job.done.Wait()
	return true
}

// deliver hands frame to each connection of one batch but exclude's.
func (f *fanout) deliver(frame []byte, exclude string, conns []*shard.Conn[*conn], s *ioScratch) {
	for _, e := range conns {
		if exclude != "" && e.User() == exclude {
			continue
		}
		if e.Value.send(frame, s) {
			s.delivered++
		}
	}
	s.flushStats(f.h)
}
