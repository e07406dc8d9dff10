package hub

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/roost-rt/roost/hub/internal/wire"
	"github.com/roost-rt/roost/shard"
)

// presenceTimeout bounds a cluster presence query made for a client.
const presenceTimeout = 5 * time.Second

// handleCommand decodes and executes one client command and replies to it.
// It runs on the poller worker that read the command.
func (c *conn) handleCommand(b []byte, s *ioScratch) {
	var cmd wire.Command
	if err := wire.DecodeCommand(b, &cmd); err != nil {
		c.replyError(cmd.ID, cmd.HasID, &Error{Code: 400, Message: err.Error()}, s)
		return
	}
	if !c.allowInbound(s) {
		return
	}
	var err error
	switch cmd.Op {
	case wire.OpSubscribe:
		err = c.subscribe(cmd.Channel)
	case wire.OpUnsubscribe:
		err = c.unsubscribe(cmd.Channel)
	case wire.OpPublish:
		err = c.publish(&cmd)
	case wire.OpPresence:
		c.presence(cmd.ID, cmd.HasID, cmd.Channel, s)
		return
	case wire.OpPing:
	case wire.OpRefresh:
		err = c.refresh(cmd.Token)
	default:
		err = &Error{Code: 400, Message: "unknown op " + quoteOp(cmd.OpName)}
	}
	if err != nil {
		c.replyError(cmd.ID, cmd.HasID, err, s)
		return
	}
	if cmd.HasID {
		c.send(framed(wire.AppendOK(frameBuf(32), cmd.ID)), s)
	}
}

func quoteOp(op string) string {
	if len(op) > 32 {
		op = op[:32] + "..."
	}
	return string(wire.AppendString(nil, op))
}

// allowInbound applies the per-connection inbound rate (a token bucket
// refilled at Config.InboundRate). A refused command is answered 429; a
// connection refused more than InboundBurst times in a row is closed with
// 1008.
func (c *conn) allowInbound(s *ioScratch) bool {
	cfg := &c.h.cfg
	if cfg.InboundRate < 0 {
		return true
	}
	now := s.now
	burst := float64(cfg.InboundBurst)
	if c.rlLast == 0 {
		c.rlTokens = float32(burst)
	} else {
		c.rlTokens = float32(min(burst, float64(c.rlTokens)+float64(now-c.rlLast)*cfg.InboundRate/1e9))
	}
	c.rlLast = now
	if c.rlTokens >= 1 {
		c.rlTokens--
		c.rlStrikes = 0
		return true
	}
	c.h.st.rateLimited.Add(1)
	c.rlStrikes++
	if int(c.rlStrikes) > cfg.InboundBurst {
		c.abort(ReasonPolicy, errTooMany)
		return false
	}
	c.replyError(0, false, errTooMany, s)
	return false
}

// replyError sends {"id":N,"error":{...}}; err is a *Error or gets code 500.
func (c *conn) replyError(id int64, hasID bool, err error, s *ioScratch) {
	var e *Error
	if !errors.As(err, &e) {
		c.h.log.Warn("command failed", "conn", c.entry.ID(), "err", err)
		e = errInternal
	}
	c.send(framed(wire.AppendError(frameBuf(48+len(e.Message)), id, hasID, e.Code, e.Message)), s)
}

// mayJoin applies the built-in rule for private channels: a '$' channel
// needs the channel itself, or "*", among the identity's channels.
func (c *conn) mayJoin(channel string) bool {
	if !strings.HasPrefix(channel, "$") {
		return true
	}
	for _, ch := range c.grantList() {
		if ch == "*" || ch == channel {
			return true
		}
	}
	return false
}

func (c *conn) authorizeSubscribe(channel string) error {
	if !wire.ValidChannel(channel) {
		return &Error{Code: 400, Message: "invalid channel name"}
	}
	if !c.mayJoin(channel) {
		return &Error{Code: 403, Message: "private channel not granted by the token"}
	}
	if f := c.h.cfg.AuthorizeSubscribe; f != nil {
		if err := f(c.info(), channel); err != nil {
			return err
		}
	}
	return nil
}

func (c *conn) subscribe(channel string) error {
	if err := c.authorizeSubscribe(channel); err != nil {
		return err
	}
	// At the limit only a channel already joined may be subscribed again
	// (subscribe is idempotent); the membership scan runs only there.
	if max := c.h.cfg.MaxSubscriptionsPerConn; max > 0 && c.entry.NumChannels() >= max &&
		!slices.Contains(c.entry.Channels(), channel) {
		return &Error{Code: 429, Message: "too many subscriptions on this connection"}
	}
	return c.h.join(c.entry, channel)
}

// join adds e's connection to channel and tells the Broker and the
// PresenceStore about a first member.
func (h *Hub) join(e *shard.Conn[*conn], channel string) error {
	res, err := h.reg.Subscribe(e, channel)
	if err != nil {
		return &Error{Code: 404, Message: "connection is closing"}
	}
	if res.FirstMember && h.cfg.Broker != nil {
		h.cfg.Broker.Subscribe(channel)
	}
	if res.FirstOfUser && h.cfg.Presence != nil {
		h.cfg.Presence.Joined(channel, e.User())
	}
	return nil
}

func (c *conn) unsubscribe(channel string) error {
	if !wire.ValidChannel(channel) {
		return &Error{Code: 400, Message: "invalid channel name"}
	}
	c.h.leave(c.entry, channel)
	return nil
}

// leave removes e's connection from channel; leaving a channel one is not
// in is not an error (unsubscribe is idempotent).
func (h *Hub) leave(e *shard.Conn[*conn], channel string) {
	res := h.reg.Unsubscribe(e, channel)
	if res.LastMember && h.cfg.Broker != nil {
		h.cfg.Broker.Unsubscribe(channel)
	}
	if res.LastOfUser && h.cfg.Presence != nil {
		h.cfg.Presence.Left(channel, e.User())
	}
}

func (c *conn) publish(cmd *wire.Command) error {
	if !wire.ValidChannel(cmd.Channel) {
		return &Error{Code: 400, Message: "invalid channel name"}
	}
	if cmd.Data == nil {
		return &Error{Code: 400, Message: "publish needs data"}
	}
	if f := c.h.cfg.AuthorizePublish; f != nil {
		if err := f(c.info(), cmd.Channel); err != nil {
			return err
		}
	}
	exclude := ""
	if cmd.ExcludeSelf {
		exclude = c.entry.User()
	}
	// cmd.Data aliases the read buffer; fan-out copies it into its frame.
	err := c.h.publish(context.Background(), cmd.Channel, cmd.Data, exclude)
	if errors.Is(err, ErrBrokerDown) {
		return &Error{Code: 500, Message: "delivered on this node only: cluster broker unavailable"}
	}
	return err
}

// presence answers a presence command. With a PresenceStore the query goes
// over the network, so it runs on its own goroutine (at most
// cap(presenceSem) at once) and the reply may overtake later commands'.
func (c *conn) presence(id int64, hasID bool, channel string, s *ioScratch) {
	if err := c.authorizeSubscribe(channel); err != nil {
		c.replyError(id, hasID, err, s)
		return
	}
	h := c.h
	if h.cfg.Presence == nil {
		users, _ := h.Presence(context.Background(), channel)
		c.replyUsers(id, hasID, users, s)
		return
	}
	select {
	case h.presenceSem <- struct{}{}:
	default:
		c.replyError(id, hasID, errTooMany, s)
		return
	}
	go func() {
		defer func() { <-h.presenceSem }()
		ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
		defer cancel()
		users, err := h.Presence(ctx, channel)
		if err != nil {
			c.replyError(id, hasID, &Error{Code: 500, Message: "presence unavailable"}, nil)
			return
		}
		c.replyUsers(id, hasID, users, nil)
	}()
}

func (c *conn) replyUsers(id int64, hasID bool, users []string, s *ioScratch) {
	result := append(make([]byte, 0, 16+16*len(users)), `{"users":[`...)
	for i, u := range users {
		if i > 0 {
			result = append(result, ',')
		}
		result = wire.AppendString(result, u)
	}
	result = append(result, "]}"...)
	c.send(framed(wire.AppendResult(frameBuf(32+len(result)), id, result)), s)
}

// refresh replaces the connection's credential with a fresh token.
func (c *conn) refresh(token string) error {
	f := c.h.cfg.Refresh
	if f == nil {
		return &Error{Code: 404, Message: "token refresh is not enabled"}
	}
	if token == "" {
		return &Error{Code: 400, Message: "refresh needs a token"}
	}
	id, err := f(context.Background(), c.info(), token)
	if err != nil {
		return err
	}
	if id.User != c.entry.User() {
		return &Error{Code: 403, Message: "token is for another user"}
	}
	c.grants.Store(&id.Channels)
	var exp int64
	if !id.ExpiresAt.IsZero() {
		exp = id.ExpiresAt.UnixNano()
	}
	c.expiresAt.Store(exp)
	return nil
}
