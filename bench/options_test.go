package bench

import (
	"errors"
	"strings"
	"testing"
)

func TestOptionsRejectBadInput(t *testing.T) {
	spawn := func(o Options) Options { o.Spawn = "baseline"; return o }
	cases := []struct {
		name string
		o    Options
		want error
	}{
		{"no target", Options{}, errTarget},
		{"both targets", Options{Spawn: "baseline", URLs: []string{"ws://127.0.0.1:1/ws"}}, errTarget},
		{"unknown scenario", spawn(Options{Scenario: "storm"}), errScenario},
		{"http url", Options{URLs: []string{"http://127.0.0.1:1/ws"}}, errOption},
		{"negative conns", spawn(Options{Conns: -1}), errOption},
		{"negative rate", spawn(Options{Rate: -2}), errOption},
		{"zipf at 1", spawn(Options{Zipf: 1}), errOption},
		{"slow share 1", spawn(Options{SlowShare: 1}), errOption},
		{"cluster with one node", spawn(Options{Scenario: "cluster"}), errOption},
		{"baseline cluster", Options{Spawn: "baseline", Nodes: 3}, errOption},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.o.normalize(); !errors.Is(err, c.want) {
				t.Fatalf("normalize() = %v, want %v", err, c.want)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	cases := []struct {
		scenario             string
		channels, msgs, size int
		rate                 float64
	}{
		{"idle", 1, 0, 100, 0},
		{"broadcast", 1, 20, 100, 2},
		{"channels", 1000, 5000, 100, 500},
		{"slow", 1, 400, 16 << 10, 100},
	}
	for _, c := range cases {
		t.Run(c.scenario, func(t *testing.T) {
			o := Options{Scenario: c.scenario, Spawn: "baseline", Conns: 5000}
			if err := o.normalize(); err != nil {
				t.Fatal(err)
			}
			if o.Channels != c.channels || o.Msgs != c.msgs || o.Size != c.size || o.Rate != c.rate {
				t.Fatalf("got channels %d msgs %d size %d rate %v", o.Channels, o.Msgs, o.Size, o.Rate)
			}
		})
	}
}

func TestParseSources(t *testing.T) {
	cases := []struct {
		in    string
		want  []string
		isErr bool
	}{
		{"", nil, false},
		{"127.0.0.1-127.0.0.3", []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, false},
		{"127.0.0.9, 127.0.0.7", []string{"127.0.0.9", "127.0.0.7"}, false},
		{"127.0.0.5-127.0.0.1", nil, true},
		{"127.0.0.1-127.0.1.1", nil, true},
		{"localhost", nil, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseSources(c.in)
			if (err != nil) != c.isErr || strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("parseSources(%q) = %v, %v", c.in, got, err)
			}
		})
	}
}

func TestReplaceSuiteSection(t *testing.T) {
	const doc = "# Benchmarks\n\n## Cluster\n\nother\n\n## Harness (roost-bench)\n\nhand-written\n"
	out, err := replaceSuiteSection([]byte(doc), []byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	want := doc + "\n" + suiteBegin + "\nfirst\n" + suiteEnd + "\n"
	if string(out) != want {
		t.Fatalf("first insert:\n%s\nwant:\n%s", out, want)
	}
	out2, err := replaceSuiteSection(append(out, "\n## Later\n\nkept\n"...), []byte("second"))
	if err != nil {
		t.Fatal(err)
	}
	if s := string(out2); strings.Contains(s, "first") || !strings.Contains(s, suiteBegin+"\nsecond\n"+suiteEnd) ||
		!strings.Contains(s, "hand-written") || !strings.HasSuffix(s, "## Later\n\nkept\n") || !strings.Contains(s, "## Cluster\n\nother") {
		t.Fatalf("second replace:\n%s", s)
	}
	t.Run("inserted before the next section", func(t *testing.T) {
		got, err := replaceSuiteSection([]byte("## Harness (roost-bench)\n\nx\n\n## Next\ny\n"), []byte("z"))
		if err != nil {
			t.Fatal(err)
		}
		if want := "## Harness (roost-bench)\n\nx\n\n" + suiteBegin + "\nz\n" + suiteEnd + "\n\n## Next\ny\n"; string(got) != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("no section", func(t *testing.T) {
		if _, err := replaceSuiteSection([]byte("# nothing\n"), nil); !errors.Is(err, errNoSection) {
			t.Fatalf("err = %v", err)
		}
	})
}
