package cluster

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// pipelineChunk bounds the commands in one pipeline round trip.
const pipelineChunk = 1024

// chanUser is a (channel, user) presence pair.
type chanUser struct{ channel, user string }

// Joined records that user's first local connection joined channel. It does
// not block: the presence writer sends it with the next batch.
func (r *Redis) Joined(channel, user string) { r.queuePresence(chanUser{channel, user}, "", true) }

// Left records that user's last local connection left channel.
func (r *Redis) Left(channel, user string) { r.queuePresence(chanUser{channel, user}, "", false) }

// Connected records that user has local connections now.
func (r *Redis) Connected(user string) { r.queuePresence(chanUser{}, user, true) }

// Disconnected records that user has no local connection left.
func (r *Redis) Disconnected(user string) { r.queuePresence(chanUser{}, user, false) }

func (r *Redis) queuePresence(cu chanUser, user string, on bool) {
	r.mu.Lock()
	if len(r.pendingCh)+len(r.pendingUsr) >= r.cfg.MaxPending {
		// Redis has been away for long: forget the changes and rewrite
		// everything from the hub's state once it is back. Stale entries
		// expire within PresenceTTL.
		clear(r.pendingCh)
		clear(r.pendingUsr)
		r.fullSync = true
	}
	if user != "" {
		r.pendingUsr[user] = on
	} else {
		r.pendingCh[cu] = on
	}
	r.mu.Unlock()
	wake(r.preWake)
}

// presenceLoop owns every presence write and the command-link heartbeat:
// being the only writer, a refresh and a later Left cannot be reordered.
func (r *Redis) presenceLoop() {
	defer r.wg.Done()
	every := r.cfg.PresenceTTL / 3
	hb := time.NewTimer(0) // first ping at once
	defer hb.Stop()
	refresh := time.NewTimer(every)
	defer refresh.Stop()
	fails := 0
	for {
		select {
		case <-r.ctx.Done():
			if !r.noBye {
				r.goodbye()
			}
			return
		case <-hb.C:
			wasUp := r.cmdUp.Load()
			ctx, cancel := context.WithTimeout(r.ctx, 2*r.cfg.Heartbeat)
			err := r.client.Ping(ctx).Err()
			cancel()
			if err != nil {
				if wasUp {
					r.log.Warn("redis unreachable", "err", err)
				}
				r.cmdUp.Store(false)
				fails++
				hb.Reset(min(backoff(fails-1), r.cfg.Heartbeat))
				continue
			}
			fails = 0
			hb.Reset(r.cfg.Heartbeat)
			r.cmdUp.Store(true)
			if !wasUp {
				// Redis may have restarted empty: write everything again.
				r.log.Info("redis reachable")
				r.refresh(r.ctx)
				_ = r.flushPresence(r.ctx)
			}
		case <-r.preWake:
			if r.cmdUp.Load() {
				_ = r.flushPresence(r.ctx)
			}
		case done := <-r.preSync:
			done <- r.flushPresence(r.ctx)
		case <-refresh.C:
			refresh.Reset(every)
			if r.cmdUp.Load() {
				r.refresh(r.ctx)
			}
		}
	}
}

// deadline is when an entry written now expires, in Unix milliseconds.
// Entries carry it themselves because Redis 7.0 has no per-member expiry;
// readers ignore entries past it. Node clocks must agree to well under the
// TTL (NTP).
func (r *Redis) deadline() int64 { return time.Now().Add(r.cfg.PresenceTTL).UnixMilli() }

func (r *Redis) member(user string) string { return r.cfg.NodeID + "\x00" + user }

// userValue is this node's field value in a user's hash: deadline and
// local connection count.
func userValue(deadline int64, conns int) string {
	return strconv.FormatInt(deadline, 10) + ":" + strconv.Itoa(conns)
}

// flushPresence writes the queued presence changes, grouped per key. On
// failure the changes not superseded meanwhile are queued again.
func (r *Redis) flushPresence(ctx context.Context) error {
	r.mu.Lock()
	chs, usrs, full := r.pendingCh, r.pendingUsr, r.fullSync
	r.pendingCh, r.pendingUsr, r.fullSync = make(map[chanUser]bool), make(map[string]bool), false
	r.mu.Unlock()
	if full {
		r.refresh(ctx)
	}
	if len(chs) == 0 && len(usrs) == 0 {
		return nil
	}
	dl := r.deadline()
	ttl := r.cfg.PresenceTTL
	joins := make(map[string][]redis.Z)
	leaves := make(map[string][]any)
	for cu, on := range chs {
		if on {
			joins[cu.channel] = append(joins[cu.channel], redis.Z{Score: float64(dl), Member: r.member(cu.user)})
		} else {
			leaves[cu.channel] = append(leaves[cu.channel], r.member(cu.user))
		}
	}
	b := newBatch(ctx, r)
	for ch, zs := range joins {
		k := r.presenceKey(ch)
		b.add(func(p redis.Pipeliner) { p.ZAdd(b.ctx, k, zs...); p.PExpire(b.ctx, k, ttl) })
	}
	for ch, ms := range leaves {
		k := r.presenceKey(ch)
		b.add(func(p redis.Pipeliner) { p.ZRem(b.ctx, k, ms...) })
	}
	for u, on := range usrs {
		k := r.userKey(u)
		if on {
			b.add(func(p redis.Pipeliner) { p.HSet(b.ctx, k, r.cfg.NodeID, userValue(dl, 1)); p.PExpire(b.ctx, k, ttl) })
		} else {
			b.add(func(p redis.Pipeliner) { p.HDel(b.ctx, k, r.cfg.NodeID) })
		}
	}
	if err := b.exec(); err != nil {
		r.requeue(chs, usrs)
		return r.down("presence", err)
	}
	return nil
}

// requeue puts back failed changes that no newer change replaced.
func (r *Redis) requeue(chs map[chanUser]bool, usrs map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pendingCh)+len(r.pendingUsr)+len(chs)+len(usrs) > r.cfg.MaxPending {
		r.fullSync = true
		return
	}
	for k, v := range chs {
		if _, ok := r.pendingCh[k]; !ok {
			r.pendingCh[k] = v
		}
	}
	for k, v := range usrs {
		if _, ok := r.pendingUsr[k]; !ok {
			r.pendingUsr[k] = v
		}
	}
}

// refresh rewrites this node's whole presence with a new deadline: every
// local user's field and every local (channel, user) member, and trims
// expired members of those channels. The hub's state is copied first so no
// network call runs inside the hub's iteration.
func (r *Redis) refresh(ctx context.Context) {
	if r.node == nil {
		return
	}
	type userConns struct {
		user  string
		conns int
	}
	var users []userConns
	r.node.LocalUsers(func(user string, conns int) bool {
		users = append(users, userConns{user, conns})
		return true
	})
	var channels []string
	r.node.LocalChannels(func(ch string) bool {
		channels = append(channels, ch)
		return true
	})
	dl := r.deadline()
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	ttl := r.cfg.PresenceTTL
	b := newBatch(ctx, r)
	for _, u := range users {
		k, v := r.userKey(u.user), userValue(dl, u.conns)
		b.add(func(p redis.Pipeliner) { p.HSet(b.ctx, k, r.cfg.NodeID, v); p.PExpire(b.ctx, k, ttl) })
	}
	for _, ch := range channels {
		members := r.node.LocalChannelUsers(ch)
		if len(members) == 0 {
			continue
		}
		zs := make([]redis.Z, len(members))
		for i, u := range members {
			zs[i] = redis.Z{Score: float64(dl), Member: r.member(u)}
		}
		k := r.presenceKey(ch)
		b.add(func(p redis.Pipeliner) {
			p.ZAdd(b.ctx, k, zs...)
			p.PExpire(b.ctx, k, ttl)
			p.ZRemRangeByScore(b.ctx, k, "-inf", "("+now)
		})
	}
	if err := b.exec(); err != nil {
		_ = r.down("presence refresh", err)
		r.mu.Lock()
		r.fullSync = true
		r.mu.Unlock()
	}
}

// goodbye removes this node's presence on a clean Close, so other nodes see
// its users leave at once instead of after PresenceTTL. It is bounded by one
// second.
func (r *Redis) goodbye() {
	if r.node == nil || !r.cmdUp.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = r.flushPresence(ctx)
	b := newBatch(ctx, r)
	r.node.LocalUsers(func(user string, _ int) bool {
		k := r.userKey(user)
		b.cmds = append(b.cmds, func(p redis.Pipeliner) { p.HDel(ctx, k, r.cfg.NodeID) })
		return true
	})
	var channels []string
	r.node.LocalChannels(func(ch string) bool {
		channels = append(channels, ch)
		return true
	})
	for _, ch := range channels {
		var ms []any
		for _, u := range r.node.LocalChannelUsers(ch) {
			ms = append(ms, r.member(u))
		}
		if len(ms) > 0 {
			k := r.presenceKey(ch)
			b.cmds = append(b.cmds, func(p redis.Pipeliner) { p.ZRem(ctx, k, ms...) })
		}
	}
	if err := b.exec(); err != nil {
		r.log.Warn("presence goodbye failed; entries expire with the TTL", "err", err)
	}
}

// batch collects pipeline commands and sends them pipelineChunk at a time.
type batch struct {
	r    *Redis
	ctx  context.Context
	cmds []func(redis.Pipeliner)
}

func newBatch(ctx context.Context, r *Redis) *batch { return &batch{r: r, ctx: ctx} }

func (b *batch) add(f func(redis.Pipeliner)) { b.cmds = append(b.cmds, f) }

func (b *batch) exec() error {
	for len(b.cmds) > 0 {
		n := min(len(b.cmds), pipelineChunk/2)
		p := b.r.client.Pipeline()
		for _, f := range b.cmds[:n] {
			f(p)
		}
		if _, err := p.Exec(b.ctx); err != nil {
			return err
		}
		b.cmds = b.cmds[n:]
	}
	return nil
}

// Presence returns the distinct users in channel across the cluster, sorted:
// the members of the channel's sorted set whose deadline has not passed.
func (r *Redis) Presence(ctx context.Context, channel string) ([]string, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	ms, err := r.client.ZRangeByScore(ctx, r.presenceKey(channel), &redis.ZRangeBy{Min: now, Max: "+inf"}).Result()
	if err != nil {
		return nil, r.down("presence", err)
	}
	users := make([]string, 0, len(ms))
	for _, m := range ms {
		if _, u, ok := strings.Cut(m, "\x00"); ok {
			users = append(users, u)
		}
	}
	slices.Sort(users)
	return slices.Compact(users), nil
}

// Online returns how many connections user holds across the cluster. Counts
// are as of each node's last refresh (at most PresenceTTL/3 old); whether
// the user is online at all follows Connected and Disconnected at once.
func (r *Redis) Online(ctx context.Context, user string) (int, error) {
	if r.closed.Load() {
		return 0, ErrClosed
	}
	nodes, err := r.userNodes(ctx, user)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, n := range nodes {
		total += n.conns
	}
	return total, nil
}

type userNode struct {
	id    string
	conns int
}

// userNodes reads the live nodes of user's hash, and deletes fields of nodes
// that stopped refreshing (a node killed without goodbye).
func (r *Redis) userNodes(ctx context.Context, user string) ([]userNode, error) {
	k := r.userKey(user)
	fields, err := r.client.HGetAll(ctx, k).Result()
	if err != nil {
		return nil, r.down("user lookup", err)
	}
	now := time.Now().UnixMilli()
	var live []userNode
	var stale []string
	for id, v := range fields {
		dls, cs, ok := strings.Cut(v, ":")
		dl, err1 := strconv.ParseInt(dls, 10, 64)
		conns, err2 := strconv.Atoi(cs)
		if !ok || err1 != nil || err2 != nil || dl < now {
			stale = append(stale, id)
			continue
		}
		live = append(live, userNode{id, conns})
	}
	if len(stale) > 0 {
		_ = r.client.HDel(ctx, k, stale...).Err()
	}
	return live, nil
}
