package bench

import (
	"errors"
	"math"
	"sync"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: values are microseconds from 1 µs to 10 minutes, kept
// to 3 significant figures.
const (
	histMin     = 1
	histMax     = 600_000_000
	histSigFigs = 3
	numShards   = 16
)

var errHistogramMismatch = errors.New("roost: bench: histogram snapshots have different bounds")

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, histSigFigs)
}

// recordMicros records d nanoseconds as microseconds, clamped to the
// histogram's range so no value is silently lost.
func recordMicros(h *hdrhistogram.Histogram, ns int64) {
	us := ns / 1000
	us = min(max(us, histMin), histMax)
	h.RecordValue(us)
}

// mergeSnapshots rebuilds the histograms that workers exported and adds
// them into one. Every snapshot must share the harness's bounds.
func mergeSnapshots(snaps []*hdrhistogram.Snapshot) (*hdrhistogram.Histogram, error) {
	out := newHistogram()
	for _, s := range snaps {
		if s == nil {
			continue
		}
		if s.LowestTrackableValue != histMin || s.HighestTrackableValue != histMax || s.SignificantFigures != histSigFigs {
			return nil, errHistogramMismatch
		}
		out.Merge(hdrhistogram.Import(s))
	}
	return out, nil
}

// Percentiles summarizes a latency histogram in milliseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func percentiles(h *hdrhistogram.Histogram) Percentiles {
	if h == nil || h.TotalCount() == 0 {
		return Percentiles{}
	}
	ms := func(us int64) float64 { return math.Round(float64(us)) / 1000 }
	return Percentiles{
		Count: h.TotalCount(),
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
	}
}

// Loss is the outcome of checking every expected (connection, message)
// pair against what arrived.
type Loss struct {
	Expected   int64 `json:"expected"`   // pairs that should have arrived
	Delivered  int64 `json:"delivered"`  // distinct expected pairs that arrived
	Missing    int64 `json:"missing"`    // expected pairs that never arrived
	Duplicate  int64 `json:"duplicate"`  // extra arrivals of a pair already seen
	Unexpected int64 `json:"unexpected"` // arrivals outside what was published (wrong channel or sequence)
}

// Add accumulates o into l (workers' results into the run's).
func (l *Loss) Add(o Loss) {
	l.Expected += o.Expected
	l.Delivered += o.Delivered
	l.Missing += o.Missing
	l.Duplicate += o.Duplicate
	l.Unexpected += o.Unexpected
}

// OK reports whether every expected pair arrived exactly once.
func (l Loss) OK() bool { return l.Missing == 0 && l.Duplicate == 0 && l.Unexpected == 0 }

// tally counts deliveries per (connection, message) for the connections of
// one worker. Each connection belongs to one channel; messages are numbered
// per channel from 0. Connections are sharded over numShards locks so the
// read goroutines rarely contend; each shard also keeps a latency histogram
// and, per channel and sequence, the latest delivery (fan-out completion).
type tally struct {
	conns  []connTally
	shards [numShards]tallyShard
}

type connTally struct {
	channel int32
	tracked bool    // false for connections excluded from loss accounting
	remote  bool    // connected to another node than the one publishes go to
	counts  []uint8 // arrivals per sequence, saturating at 255
	extra   int64   // arrivals outside the channel or with an absurd sequence
}

type tallyShard struct {
	mu      sync.Mutex
	hist    *hdrhistogram.Histogram
	remote  *hdrhistogram.Histogram // latency of remote connections; nil until markRemote
	lastLat map[int32][]int64       // channel -> seq -> largest latency seen, ns
	good    int64                   // first arrivals of tracked pairs
	_       [64]byte
}

// maxSeq bounds the per-channel sequence a connection accepts, so a corrupt
// payload cannot make it allocate without limit.
const maxSeq = 1 << 24

func newTally(channels []int32) *tally {
	t := &tally{conns: make([]connTally, len(channels))}
	for i, ch := range channels {
		t.conns[i] = connTally{channel: ch, tracked: true}
	}
	for i := range t.shards {
		t.shards[i].hist = newHistogram()
		t.shards[i].lastLat = make(map[int32][]int64)
	}
	return t
}

// untrack excludes connection i from loss accounting (failed to connect,
// or deliberately slow).
func (t *tally) untrack(i int) {
	s := &t.shards[i%numShards]
	s.mu.Lock()
	t.conns[i].tracked = false
	s.mu.Unlock()
}

// markRemote says connection i is on another node than the publishing one,
// so its deliveries also count in the cross-node histogram.
func (t *tally) markRemote(i int) {
	s := &t.shards[i%numShards]
	s.mu.Lock()
	t.conns[i].remote = true
	if s.remote == nil {
		s.remote = newHistogram()
	}
	s.mu.Unlock()
}

// record notes that connection i received message seq of channel ch, sent at
// sent and received at recv (unix nanoseconds).
func (t *tally) record(i int, ch int32, seq, sent, recv int64) {
	s := &t.shards[i%numShards]
	c := &t.conns[i]
	lat := recv - sent
	s.mu.Lock()
	defer s.mu.Unlock()
	recordMicros(s.hist, lat)
	if c.remote {
		recordMicros(s.remote, lat)
	}
	if ch != c.channel || seq < 0 || seq >= maxSeq {
		c.extra++
		return
	}
	if int(seq) >= len(c.counts) {
		c.counts = append(c.counts, make([]uint8, int(seq)+1-len(c.counts))...)
	}
	if c.counts[seq] < math.MaxUint8 {
		c.counts[seq]++
	}
	if c.counts[seq] == 1 && c.tracked {
		s.good++
	}
	last := s.lastLat[ch]
	if int(seq) >= len(last) {
		last = append(last, make([]int64, int(seq)+1-len(last))...)
		s.lastLat[ch] = last
	}
	last[seq] = max(last[seq], lat)
}

// delivered returns the number of first arrivals of tracked pairs, counting
// sequences that may turn out never published: a cheap upper bound on
// check's Delivered, for progress and for knowing when to run check.
func (t *tally) delivered() int64 {
	var n int64
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.good
		s.mu.Unlock()
	}
	return n
}

// expected returns how many pairs the tracked connections should receive
// when channel c has had published[c] messages.
func (t *tally) expected(published []int64) int64 {
	var n int64
	for i := range t.conns {
		s := &t.shards[i%numShards]
		s.mu.Lock()
		c := t.conns[i]
		s.mu.Unlock()
		if c.tracked && int(c.channel) < len(published) {
			n += published[c.channel]
		}
	}
	return n
}

// check compares arrivals with published (messages per channel index).
func (t *tally) check(published []int64) Loss {
	var l Loss
	for i := range t.conns {
		s := &t.shards[i%numShards]
		s.mu.Lock()
		c := &t.conns[i]
		if c.tracked {
			var want int64
			if int(c.channel) < len(published) {
				want = published[c.channel]
			}
			l.Expected += want
			l.Unexpected += c.extra
			for seq, n := range c.counts {
				switch {
				case int64(seq) >= want:
					l.Unexpected += int64(n)
				case n > 0:
					l.Delivered++
					l.Duplicate += int64(n) - 1
				}
			}
		}
		s.mu.Unlock()
	}
	l.Missing = l.Expected - l.Delivered
	return l
}

// histogram merges the shards' latency histograms.
func (t *tally) histogram() *hdrhistogram.Histogram {
	h := newHistogram()
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		h.Merge(s.hist)
		s.mu.Unlock()
	}
	return h
}

// remoteHistogram merges the shards' cross-node latency histograms; nil
// when no connection is remote.
func (t *tally) remoteHistogram() *hdrhistogram.Histogram {
	var h *hdrhistogram.Histogram
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		if s.remote != nil {
			if h == nil {
				h = newHistogram()
			}
			h.Merge(s.remote)
		}
		s.mu.Unlock()
	}
	return h
}

// completion returns, per channel and sequence, the largest latency seen.
func (t *tally) completion() map[int32][]int64 {
	out := make(map[int32][]int64)
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for ch, last := range s.lastLat {
			out[ch] = mergeMax(out[ch], last)
		}
		s.mu.Unlock()
	}
	return out
}

// mergeMax returns the element-wise maximum of a and b, reusing a.
func mergeMax(a, b []int64) []int64 {
	if len(b) > len(a) {
		a = append(a, make([]int64, len(b)-len(a))...)
	}
	for i, v := range b {
		a[i] = max(a[i], v)
	}
	return a
}
