package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSoakJudge(t *testing.T) {
	cycle := func(rss int64, goro float64) SoakCycle {
		return SoakCycle{RSSConnected: map[string]int64{"churn": rss, "slow": rss, "broadcast": rss}, QuietGoroutines: goro}
	}
	cases := []struct {
		name   string
		cycles []SoakCycle
		want   string // substring of the one violation; empty: none
	}{
		{"flat", []SoakCycle{cycle(100<<20, 20), cycle(101<<20, 20), cycle(100<<20, 21)}, ""},
		{"within bounds", []SoakCycle{cycle(100<<20, 20), cycle(140<<20, 36)}, ""},
		{"memory leak", []SoakCycle{cycle(100<<20, 20), cycle(120<<20, 20), cycle(142<<20, 20)}, "RSS"},
		{"goroutine leak", []SoakCycle{cycle(100<<20, 20), cycle(100<<20, 37)}, "goroutines"},
		{"one cycle", []SoakCycle{cycle(100<<20, 20)}, "fewer than two cycles"},
	}
	so := SoakOptions{RSSGrowth: 0.25, RSSSlack: 16 << 20, GoroutineSlack: 16}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &SoakResult{Cycles: c.cycles}
			so.judge(r)
			if c.want == "" {
				if len(r.Violations) != 0 {
					t.Fatalf("violations %q, want none", r.Violations)
				}
				return
			}
			if len(r.Violations) == 0 || !strings.Contains(strings.Join(r.Violations, "; "), c.want) {
				t.Fatalf("violations %q, want one about %q", r.Violations, c.want)
			}
		})
	}
}

// TestSoakShort runs the soak's two minimum cycles at small N against a
// spawned baseline child.
func TestSoakShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := Soak(ctx, SoakOptions{
		Base:     Options{Spawn: "baseline", Exec: testExec, Conns: 40, Msgs: 6, Rate: 100, ChurnRate: 50, Quiet: true, Wait: 20 * time.Second},
		Duration: time.Nanosecond, Sample: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Soak: %v (result %+v)", err, r)
	}
	if len(r.Cycles) != 2 || r.Runs != 6 || len(r.Samples) == 0 {
		t.Fatalf("cycles %d, runs %d, samples %d; want 2, 6 and some", len(r.Cycles), r.Runs, len(r.Samples))
	}
	if !r.Loss.OK() || r.Loss.Delivered == 0 || r.Churned == 0 {
		t.Fatalf("loss %+v, churned %d", r.Loss, r.Churned)
	}
	for i, c := range r.Cycles {
		if c.QuietGoroutines < 0 || c.RSSConnected["broadcast"] <= 0 {
			t.Fatalf("cycle %d: %+v", i+1, c)
		}
	}
}

func TestSoakRejectsNegativeBounds(t *testing.T) {
	_, err := Soak(context.Background(), SoakOptions{Base: Options{Spawn: "baseline", Exec: testExec}, Duration: -time.Second})
	if !errors.Is(err, errOption) {
		t.Fatalf("err = %v, want errOption", err)
	}
}
