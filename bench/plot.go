package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Chart size and series colors (roost first, baseline second).
const (
	plotW = 16 * vg.Centimeter
	plotH = 10 * vg.Centimeter
)

var seriesColors = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// MarshalJSON writes NaN (a side not measured) as null.
func (m MetricMedian) MarshalJSON() ([]byte, error) {
	f := func(v float64) any {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return v
	}
	return json.Marshal(map[string]any{"name": m.Name, "unit": m.Unit, "roost": f(m.Roost), "baseline": f(m.Baseline), "ratio": f(m.Ratio)})
}

// cdfPoints turns a latency histogram into (latency ms, cumulative share).
func cdfPoints(h *hdrhistogram.Histogram) plotter.XYs {
	var pts plotter.XYs
	total := float64(h.TotalCount())
	if total == 0 {
		return pts
	}
	var cum int64
	for _, b := range h.Distribution() {
		if b.Count == 0 {
			continue
		}
		cum += b.Count
		pts = append(pts, plotter.XY{X: float64(b.To) / 1000, Y: float64(cum) / total})
	}
	return pts
}

// series is one named line for a chart.
type series struct {
	name string
	pts  plotter.XYs
}

// saveLines draws lines into dir/file.
func saveLines(path, title, xlabel, ylabel string, logX bool, ss []series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	if logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Add(plotter.NewGrid())
	for i, s := range ss {
		if len(s.pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(s.pts)
		if err != nil {
			return err
		}
		l.Color = seriesColors[i%len(seriesColors)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		if len(s.pts) < 12 {
			sc, err := plotter.NewScatter(s.pts)
			if err != nil {
				return err
			}
			sc.Color = l.Color
			p.Add(sc)
		}
		p.Legend.Add(s.name, l)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	return p.Save(plotW, plotH, path)
}

// PlotRun writes dir/<scenario>-latency-cdf.png for a run with deliveries.
func PlotRun(dir string, r *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if r.hist == nil || r.hist.TotalCount() == 0 {
		return nil
	}
	return saveLines(filepath.Join(dir, r.Scenario+"-latency-cdf.png"),
		fmt.Sprintf("%s: delivery latency, %d connections", r.Scenario, r.Conns),
		"latency (ms, log)", "share of deliveries", true,
		[]series{{r.Server, cdfPoints(r.hist)}})
}

// PlotComparison writes the latency CDF of both servers (all runs merged)
// and a bar chart of roost/baseline ratios.
func PlotComparison(dir string, c *Comparison) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var ss []series
	for _, side := range []struct {
		name string
		rs   []*Result
	}{{"roost", c.Roost}, {"baseline", c.Baseline}} {
		h := newHistogram()
		for _, r := range side.rs {
			if r.hist != nil {
				h.Merge(r.hist)
			}
		}
		ss = append(ss, series{side.name, cdfPoints(h)})
	}
	if len(ss[0].pts)+len(ss[1].pts) > 0 {
		if err := saveLines(filepath.Join(dir, c.Scenario+"-latency-cdf.png"),
			fmt.Sprintf("%s: delivery latency, %d connections", c.Scenario, c.Conns),
			"latency (ms, log)", "share of deliveries", true, ss); err != nil {
			return err
		}
	}
	return plotRatios(filepath.Join(dir, c.Scenario+"-roost-vs-baseline.png"), c)
}

// plotRatios draws roost/baseline per metric as bars (1 = same as baseline).
func plotRatios(path string, c *Comparison) error {
	var vals plotter.Values
	var names []string
	for _, m := range c.Metrics {
		if math.IsNaN(m.Ratio) || math.IsInf(m.Ratio, 0) {
			continue
		}
		vals = append(vals, m.Ratio)
		names = append(names, cmp.Or(m.Short, m.Name))
	}
	if len(vals) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s at %d connections: roost / baseline (median of %d)", c.Scenario, c.Conns, c.Runs)
	p.Y.Label.Text = "ratio (below 1: roost uses less)"
	bars, err := plotter.NewBarChart(vals, vg.Points(18))
	if err != nil {
		return err
	}
	bars.Color = seriesColors[0]
	p.Add(bars, plotter.NewGrid())
	one, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 1}, {X: float64(len(vals)) - 0.5, Y: 1}})
	if err != nil {
		return err
	}
	one.Color = seriesColors[1]
	one.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(one)
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 0.5
	p.X.Tick.Label.XAlign = -0.9
	return p.Save(plotW, plotH+2*vg.Centimeter, path)
}

// plotScaling draws y(conns) per server from results at several sizes.
func plotScaling(path, title, ylabel string, bySide map[string][]*Result, y func(*Result) (float64, bool)) error {
	var ss []series
	sides := make([]string, 0, len(bySide))
	for s := range bySide {
		sides = append(sides, s)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(sides))) // roost before baseline
	for _, side := range sides {
		byN := map[int][]float64{}
		for _, r := range bySide[side] {
			if v, ok := y(r); ok {
				byN[r.Conns] = append(byN[r.Conns], v)
			}
		}
		var pts plotter.XYs
		for n, v := range byN {
			pts = append(pts, plotter.XY{X: float64(n), Y: median(v)})
		}
		sort.Slice(pts, func(i, j int) bool { return pts[i].X < pts[j].X })
		ss = append(ss, series{side, pts})
	}
	return saveLines(path, title, "connections", ylabel, false, ss)
}
