package main

import (
	"fmt"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// The plots, in the report's order.
var (
	plotFiles  = []string{"touch.png", "memory.png", "gc.png", "lateness.png"}
	plotTitles = []string{
		"touch ns vs sessions",
		"bytes per session vs sessions",
		"forced GC time vs sessions",
		"expiry lateness distribution",
	}
)

// plots writes the PNG plots into dir.
func (r *report) plots(dir string) error {
	series := []struct {
		scenario, metric, ylabel string
		logY                     bool
	}{
		{scTouchRandom, mNsOp, "ns per touch (random order, 1 goroutine)", false},
		{scMemory, mBytes, "heap bytes per live session", false},
		{scGC, mMs, "ms per forced runtime.GC()", true},
	}
	for i, s := range series {
		p := plot.New()
		p.Title.Text = plotTitles[i]
		p.X.Label.Text = "live sessions"
		p.Y.Label.Text = s.ylabel
		p.Legend.Top = true
		p.Legend.Left = true
		var lines []any
		for _, e := range r.engines() {
			var xys plotter.XYs
			for _, n := range r.sizes() {
				if v, ok := r.value(s.scenario, e, n, s.metric); ok && (!s.logY || v > 0) {
					xys = append(xys, plotter.XY{X: float64(n), Y: v})
				}
			}
			if len(xys) > 0 {
				lines = append(lines, e, xys)
			}
		}
		if len(lines) > 0 {
			// Log scales need data: an empty plot keeps linear axes.
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = plot.LogTicks{Prec: -1}
			if s.logY {
				p.Y.Scale = plot.LogScale{}
				p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
			} else {
				p.Y.Min = 0
			}
			if err := plotutil.AddLinePoints(p, lines...); err != nil {
				return err
			}
		}
		if err := save(p, filepath.Join(dir, plotFiles[i])); err != nil {
			return err
		}
	}

	// Lateness spans from a fraction of a tick to seconds: a log scale,
	// with sessions that ended early or on time drawn at its left edge.
	const floorMs = 0.01
	p := plot.New()
	p.Title.Text = plotTitles[3]
	p.X.Label.Text = fmt.Sprintf("ms past the deadline (log scale; early or on time: at %g)", floorMs)
	p.Y.Label.Text = "fraction of sessions ended"
	p.Y.Min, p.Y.Max = 0, 1.3 // room for the legend above the curves
	p.Legend.Top = true
	p.Legend.Left = true
	var lines []any
	for _, e := range r.engines() {
		c, ok := r.lateness[e]
		if !ok {
			continue
		}
		xys := make(plotter.XYs, len(c.ms))
		for i := range c.ms {
			xys[i] = plotter.XY{X: max(c.ms[i], floorMs), Y: c.q[i]}
		}
		lines = append(lines, fmt.Sprintf("%s (%s sessions)", e, humanCount(c.n)), xys)
	}
	if len(lines) > 0 {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		if err := plotutil.AddLines(p, lines...); err != nil {
			return err
		}
	}
	return save(p, filepath.Join(dir, plotFiles[3]))
}

func save(p *plot.Plot, file string) error {
	if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, file); err != nil {
		return fmt.Errorf("plot %s: %w", file, err)
	}
	return nil
}
