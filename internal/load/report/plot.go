package report

import (
	"cmp"
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/meerkat-xmpp/meerkat/internal/load/metrics"
)

// Plot writes a PNG of the results' timelines: TTD p50 and p99 per second
// (top) and stanzas received per second (bottom), one line per result,
// against seconds since each run's start. Runs without stanzas (login)
// show sessions online and logins per second instead.
func Plot(path string, results ...*metrics.Result) error {
	hasTTD := false
	for _, res := range results {
		for _, s := range res.Timeline {
			hasTTD = hasTTD || s.TTDP50 > 0
		}
	}
	ttd := plot.New()
	ttd.X.Label.Text = "s"
	thr := plot.New()
	thr.X.Label.Text = "s"
	if hasTTD {
		ttd.Title.Text = "time to deliver"
		ttd.Y.Label.Text = "ms"
		ttd.Y.Scale = plot.LogScale{}
		ttd.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		thr.Title.Text = "throughput"
		thr.Y.Label.Text = "stanzas received/s"
	} else {
		ttd.Title.Text = "sessions online"
		thr.Title.Text = "login rate"
		thr.Y.Label.Text = "logins/s"
	}
	for i, res := range results {
		if len(res.Timeline) == 0 {
			continue
		}
		t0 := res.Timeline[0].T - 1
		var p50, p99, rate plotter.XYs
		for _, s := range res.Timeline {
			x := float64(s.T - t0)
			switch {
			case !hasTTD:
				p99 = append(p99, plotter.XY{X: x, Y: float64(s.Connected)})
				rate = append(rate, plotter.XY{X: x, Y: float64(s.Logins)})
			case s.TTDP50 > 0:
				p50 = append(p50, plotter.XY{X: x, Y: float64(s.TTDP50) / 1000})
				p99 = append(p99, plotter.XY{X: x, Y: float64(s.TTDP99) / 1000})
				fallthrough
			default:
				rate = append(rate, plotter.XY{X: x, Y: float64(s.Received)})
			}
		}
		name := cmp.Or(res.Label, res.Target)
		top := name // sessions online, without TTD
		if hasTTD {
			top = name + " p99"
		}
		color := plotter.DefaultLineStyle.Color
		if i < len(palette) {
			color = palette[i]
		}
		for _, l := range []struct {
			xy     plotter.XYs
			label  string
			dashed bool
			p      *plot.Plot
		}{{p50, name + " p50", true, ttd}, {p99, top, false, ttd}, {rate, name, false, thr}} {
			if len(l.xy) == 0 {
				continue
			}
			line, err := plotter.NewLine(l.xy)
			if err != nil {
				return fmt.Errorf("plot: %w", err)
			}
			line.Color = color
			if l.dashed {
				line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			}
			l.p.Add(line)
			l.p.Legend.Add(l.label, line)
		}
	}
	ttd.Legend.Top = true
	thr.Legend.Top = true
	img := vgimg.New(vg.Points(720), vg.Points(720))
	dc := draw.New(img)
	rows := [][]*plot.Plot{{ttd}, {thr}}
	canvases := plot.Align(rows, draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Points(10), PadX: vg.Points(10), PadTop: vg.Points(5), PadBottom: vg.Points(5)}, dc)
	ttd.Draw(canvases[0][0])
	thr.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return f.Close()
}

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // blue
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // red
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, // green
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, // orange
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, // purple
}
