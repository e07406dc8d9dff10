package bench

import (
	"math/rand/v2"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// TestMergeSnapshotsAcrossWorkers checks that histograms exported by several
// workers (through JSON, as they travel) merge into exactly the histogram of
// all values recorded in one place.
func TestMergeSnapshotsAcrossWorkers(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	all := newHistogram()
	var snaps []*hdrhistogram.Snapshot
	for w := range 5 {
		h := newHistogram()
		for range 2000 + w*500 {
			v := int64(rng.ExpFloat64()*3000) + 1
			h.RecordValue(v)
			all.RecordValue(v)
		}
		snaps = append(snaps, roundTrip(t, h.Export()))
	}
	merged, err := mergeSnapshots(snaps)
	if err != nil {
		t.Fatal(err)
	}
	if merged.TotalCount() != all.TotalCount() {
		t.Fatalf("merged count %d, want %d", merged.TotalCount(), all.TotalCount())
	}
	for _, q := range []float64{50, 90, 99, 99.9, 100} {
		if got, want := merged.ValueAtQuantile(q), all.ValueAtQuantile(q); got != want {
			t.Errorf("p%v: merged %d, want %d", q, got, want)
		}
	}
	if merged.Max() != all.Max() || merged.Min() != all.Min() {
		t.Errorf("min/max %d/%d, want %d/%d", merged.Min(), merged.Max(), all.Min(), all.Max())
	}

	t.Run("bounds mismatch", func(t *testing.T) {
		other := hdrhistogram.New(1, 1000, 2).Export()
		if _, err := mergeSnapshots([]*hdrhistogram.Snapshot{other}); err == nil {
			t.Fatal("merged a snapshot with other bounds")
		}
	})
	t.Run("nil skipped", func(t *testing.T) {
		h, err := mergeSnapshots([]*hdrhistogram.Snapshot{nil, snaps[0]})
		if err != nil || h.TotalCount() != 2000 {
			t.Fatalf("got %v, %v", h.TotalCount(), err)
		}
	})
}

// roundTrip sends a snapshot through the worker protocol's JSON encoding.
func roundTrip(tb testing.TB, s *hdrhistogram.Snapshot) *hdrhistogram.Snapshot {
	tb.Helper()
	var m fromWorker
	b := mustJSON(tb, fromWorker{Report: &WorkerReport{Latency: s}})
	if err := jsonUnmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m.Report.Latency
}

// delivery is one synthetic arrival: connection, channel, sequence.
type delivery struct {
	conn int
	ch   int32
	seq  int64
}

func TestTallyDetectsLossAndDuplicates(t *testing.T) {
	// Four connections: 0 and 1 in channel 0, 2 and 3 in channel 1.
	// Channel 0 had 3 messages, channel 1 had 2.
	assign := []int32{0, 0, 1, 1}
	published := []int64{3, 2}
	full := []delivery{{0, 0, 0}, {0, 0, 1}, {0, 0, 2}, {1, 0, 0}, {1, 0, 1}, {1, 0, 2}, {2, 1, 0}, {2, 1, 1}, {3, 1, 0}, {3, 1, 1}}
	cases := []struct {
		name    string
		log     []delivery
		untrack []int
		want    Loss
	}{
		{"all once", full, nil, Loss{Expected: 10, Delivered: 10}},
		{"one missing", full[1:], nil, Loss{Expected: 10, Delivered: 9, Missing: 1}},
		{"duplicate", append(append([]delivery{}, full...), delivery{2, 1, 1}, delivery{2, 1, 1}), nil, Loss{Expected: 10, Delivered: 10, Duplicate: 2}},
		{"wrong channel", append(append([]delivery{}, full...), delivery{0, 1, 0}), nil, Loss{Expected: 10, Delivered: 10, Unexpected: 1}},
		{"sequence never published", append(append([]delivery{}, full...), delivery{3, 1, 5}), nil, Loss{Expected: 10, Delivered: 10, Unexpected: 1}},
		{"nothing", nil, nil, Loss{Expected: 10, Missing: 10}},
		{"untracked connection ignored", full[3:], []int{0}, Loss{Expected: 7, Delivered: 7}},
		{"missing and duplicate together", append(append([]delivery{}, full[:9]...), full[0]), nil, Loss{Expected: 10, Delivered: 9, Missing: 1, Duplicate: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tl := newTally(assign)
			for _, i := range c.untrack {
				tl.untrack(i)
			}
			for _, d := range c.log {
				tl.record(d.conn, d.ch, d.seq, 1_000, 2_000_000)
			}
			got := tl.check(published)
			if got != c.want {
				t.Fatalf("check = %+v, want %+v", got, c.want)
			}
			if got.OK() != (c.want.Missing == 0 && c.want.Duplicate == 0 && c.want.Unexpected == 0) {
				t.Fatalf("OK() = %v for %+v", got.OK(), got)
			}
			if exp := tl.expected(published); exp != c.want.Expected {
				t.Fatalf("expected() = %d, want %d", exp, c.want.Expected)
			}
			if n := tl.delivered(); n < c.want.Delivered {
				t.Fatalf("delivered() = %d, want at least %d", n, c.want.Delivered)
			}
		})
	}
}

func TestTallyCompletionIsLatestDelivery(t *testing.T) {
	tl := newTally([]int32{0, 0, 0})
	tl.record(0, 0, 0, 0, 5e6)
	tl.record(1, 0, 0, 0, 9e6)
	tl.record(2, 0, 0, 0, 7e6)
	tl.record(2, 0, 1, 100, 3e6)
	got := tl.completion()[0]
	if len(got) != 2 || got[0] != 9e6 || got[1] != 3e6-100 {
		t.Fatalf("completion = %v, want [9e6 %v]", got, 3e6-100)
	}
	if p := percentiles(tl.histogram()); p.Count != 4 || p.Max < 8.9 || p.Max > 9.1 {
		t.Fatalf("percentiles = %+v", p)
	}
}

func TestParsePush(t *testing.T) {
	payload := appendPayload(nil, 1700000000123456789, 42, 7, 100)
	if len(payload) != 100 {
		t.Fatalf("payload is %d bytes, want 100", len(payload))
	}
	cases := []struct {
		name string
		msg  string
		want benchPush
		ok   bool
	}{
		{"push", `{"channel":"bench.7","data":` + string(payload) + `}`, benchPush{1700000000123456789, 42, 7}, true},
		{"reply", `{"id":1,"ok":true}`, benchPush{}, false},
		{"foreign push", `{"channel":"x","data":{"hello":1}}`, benchPush{}, false},
		{"spaces", `{"channel":"a","data":{"t": 5,"s": 6,"c": 0}}`, benchPush{5, 6, 0}, true},
		{"truncated", `{"channel":"a","data":{"t":5,"s":`, benchPush{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := parsePush([]byte(c.msg))
			if ok != c.ok || (ok && got != c.want) {
				t.Fatalf("parsePush = %+v, %v; want %+v, %v", got, ok, c.want, c.ok)
			}
		})
	}
}
