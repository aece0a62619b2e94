package report

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Chart geometry, in viewBox units; the SVG scales to its container.
const (
	chartW      = 640
	chartH      = 260
	padLeft     = 58
	padRight    = 18
	padTop      = 30
	padBottom   = 42
	maxXLabels  = 12
	maxMarkers  = 60
	yTickTarget = 5
)

// series is one line of a line chart.
type series struct {
	Name  string
	Color string // a CSS colour or var(--name)
	X, Y  []float64
}

// bar is one bar of a bar chart.
type bar struct {
	Label string
	Value float64
	Color string
}

// svgBuilder writes SVG markup; text goes through esc.
type svgBuilder struct{ strings.Builder }

func (b *svgBuilder) f(format string, args ...any) { fmt.Fprintf(&b.Builder, format, args...) }

func esc(s string) string { return template.HTMLEscapeString(s) }

// num formats coordinates compactly.
func num(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// niceNum rounds x to 1, 2, 5 or 10 times a power of ten (Heckbert's
// "nice numbers"): rounding to the nearest when round is set, else up.
func niceNum(x float64, round bool) float64 {
	if x <= 0 || !finite(x) {
		return 1
	}
	exp := math.Floor(math.Log10(x))
	f := x / math.Pow(10, exp)
	var nf float64
	switch {
	case round && f < 1.5:
		nf = 1
	case round && f < 3:
		nf = 2
	case round && f < 7:
		nf = 5
	case round:
		nf = 10
	case f <= 1:
		nf = 1
	case f <= 2:
		nf = 2
	case f <= 5:
		nf = 5
	default:
		nf = 10
	}
	return nf * math.Pow(10, exp)
}

// niceTicks returns about n evenly spaced round tick values covering
// [lo, hi], and the step. An empty range is widened around its value.
func niceTicks(lo, hi float64, n int) ([]float64, float64) {
	if !finite(lo) || !finite(hi) {
		lo, hi = 0, 1
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	if hi == lo {
		if lo == 0 {
			hi = 1
		} else {
			d := math.Abs(lo) / 2
			lo, hi = lo-d, hi+d
		}
	}
	n = max(n, 2)
	step := niceNum(niceNum(hi-lo, false)/float64(n-1), true)
	start := math.Floor(lo/step) * step
	end := math.Ceil(hi/step) * step
	var ticks []float64
	for i := 0; i <= 1000; i++ {
		v := start + float64(i)*step
		if v > end+step/2 {
			break
		}
		p := math.Pow(10, float64(decimals(step)+2))
		v = math.Round(v*p) / p // 0.30000000000000004 → 0.3
		ticks = append(ticks, v)
	}
	return ticks, step
}

// tickLabel formats a tick value with as many decimals as the step needs,
// and k/M suffixes for large values.
func tickLabel(v, step float64) string {
	if math.Abs(v) < step/1e6 {
		v = 0
	}
	av := math.Abs(v)
	switch {
	case av >= 1e6 && step >= 1e5:
		return trimZeros(strconv.FormatFloat(v/1e6, 'f', decimals(step/1e6), 64)) + "M"
	case av >= 1e4 && step >= 100:
		return trimZeros(strconv.FormatFloat(v/1e3, 'f', decimals(step/1e3), 64)) + "k"
	}
	return strconv.FormatFloat(v, 'f', decimals(step), 64)
}

func decimals(step float64) int {
	if step <= 0 || !finite(step) || step >= 1 {
		return 0
	}
	return min(6, int(math.Ceil(-math.Log10(step)-1e-9)))
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// frame draws the chart title, the y grid with labels and the axis titles,
// and returns the y scale.
func frame(b *svgBuilder, title, xTitle, yTitle string, yMax float64) func(float64) float64 {
	ticks, step := niceTicks(0, yMax, yTickTarget)
	top := ticks[len(ticks)-1]
	plotH := float64(chartH - padTop - padBottom)
	y := func(v float64) float64 { return padTop + plotH - v/top*plotH }
	b.f(`<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, chartH, esc(title))
	b.f(`<title>%s</title>`, esc(title))
	for _, t := range ticks {
		b.f(`<line class="grid" x1="%d" x2="%d" y1="%s" y2="%s"/>`, padLeft, chartW-padRight, num(y(t)), num(y(t)))
		b.f(`<text class="tick" x="%d" y="%s" text-anchor="end" dy="0.32em">%s</text>`, padLeft-6, num(y(t)), esc(tickLabel(t, step)))
	}
	b.f(`<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>`, padLeft, chartW-padRight, chartH-padBottom, chartH-padBottom)
	if xTitle != "" {
		b.f(`<text class="axis-title" x="%d" y="%d" text-anchor="middle">%s</text>`, padLeft+(chartW-padLeft-padRight)/2, chartH-6, esc(xTitle))
	}
	if yTitle != "" {
		b.f(`<text class="axis-title" x="%d" y="%d" text-anchor="start">%s</text>`, 6, 14, esc(yTitle))
	}
	return y
}

// empty draws a placeholder chart.
func empty(title, msg string) template.HTML {
	var b svgBuilder
	b.f(`<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, chartH/2, esc(title))
	b.f(`<title>%s</title>`, esc(title))
	b.f(`<rect class="empty" x="1" y="1" width="%d" height="%d" rx="8"/>`, chartW-2, chartH/2-2)
	b.f(`<text class="empty-text" x="%d" y="%d" text-anchor="middle" dy="0.32em">%s</text>`, chartW/2, chartH/4, esc(msg))
	b.f(`</svg>`)
	return template.HTML(b.String()) // built from escaped parts
}

// lineChart draws series over a shared x axis (y from 0). Non-finite points
// are skipped; a single point is drawn as a marker.
func lineChart(title, xTitle, yTitle string, ss []series) template.HTML {
	xMin, xMax, yMax := math.Inf(1), math.Inf(-1), 0.0
	points := 0
	for _, s := range ss {
		for i := range min(len(s.X), len(s.Y)) {
			if !finite(s.X[i]) || !finite(s.Y[i]) {
				continue
			}
			points++
			xMin, xMax = math.Min(xMin, s.X[i]), math.Max(xMax, s.X[i])
			yMax = math.Max(yMax, s.Y[i])
		}
	}
	if points == 0 {
		return empty(title, "No data")
	}
	if xMin == xMax {
		// One point: time axes start at 0, so show [0, x+1] rather than
		// negative seconds.
		xMin, xMax = math.Max(0, xMin-1), xMax+1
	}
	var b svgBuilder
	y := frame(&b, title, xTitle, yTitle, yMax)
	plotW := float64(chartW - padLeft - padRight)
	x := func(v float64) float64 { return padLeft + (v-xMin)/(xMax-xMin)*plotW }
	xt, xstep := niceTicks(xMin, xMax, 8)
	for _, t := range xt {
		if t < xMin-xstep/1e6 || t > xMax+xstep/1e6 {
			continue
		}
		b.f(`<line class="axis" x1="%s" x2="%s" y1="%d" y2="%d"/>`, num(x(t)), num(x(t)), chartH-padBottom, chartH-padBottom+4)
		b.f(`<text class="tick" x="%s" y="%d" text-anchor="middle">%s</text>`, num(x(t)), chartH-padBottom+16, esc(tickLabel(t, xstep)))
	}
	legendX := chartW - padRight
	for i := len(ss) - 1; i >= 0; i-- {
		s := ss[i]
		w := 26 + 8*len([]rune(s.Name))
		legendX -= w
		b.f(`<g class="legend"><rect x="%d" y="8" width="12" height="4" rx="2" style="fill:%s"/>`, legendX, esc(s.Color))
		b.f(`<text x="%d" y="10" dy="0.32em">%s</text></g>`, legendX+16, esc(s.Name))
	}
	for _, s := range ss {
		var pts []string
		for i := range min(len(s.X), len(s.Y)) {
			if finite(s.X[i]) && finite(s.Y[i]) {
				pts = append(pts, num(x(s.X[i]))+","+num(y(s.Y[i])))
			}
		}
		if len(pts) > 1 {
			b.f(`<polyline class="line" points="%s" style="stroke:%s"/>`, strings.Join(pts, " "), esc(s.Color))
		}
		if len(pts) == 1 || len(pts) <= maxMarkers {
			for i := range min(len(s.X), len(s.Y)) {
				if finite(s.X[i]) && finite(s.Y[i]) {
					b.f(`<circle class="dot" cx="%s" cy="%s" r="2.6" style="fill:%s"><title>%s at %s: %s</title></circle>`,
						num(x(s.X[i])), num(y(s.Y[i])), esc(s.Color), esc(s.Name), esc(tickLabel(s.X[i], 1)), esc(shortNum(s.Y[i])))
				}
			}
		}
	}
	b.f(`</svg>`)
	return template.HTML(b.String()) // built from escaped parts
}

// barChart draws one bar per entry, labelled below; with many bars only
// every k-th label is shown.
func barChart(title, xTitle, yTitle string, bars []bar) template.HTML {
	if len(bars) == 0 {
		return empty(title, "No data")
	}
	yMax := 0.0
	for _, br := range bars {
		if finite(br.Value) {
			yMax = math.Max(yMax, br.Value)
		}
	}
	var b svgBuilder
	y := frame(&b, title, xTitle, yTitle, yMax)
	plotW := float64(chartW - padLeft - padRight)
	slot := plotW / float64(len(bars))
	gap := math.Min(slot*0.2, 8)
	every := (len(bars) + maxXLabels - 1) / maxXLabels
	base := float64(chartH - padBottom)
	for i, br := range bars {
		v := br.Value
		if !finite(v) || v < 0 {
			v = 0
		}
		x0 := padLeft + float64(i)*slot + gap/2
		top := y(v)
		b.f(`<rect class="bar" x="%s" y="%s" width="%s" height="%s" rx="2" style="fill:%s"><title>%s: %s</title></rect>`,
			num(x0), num(top), num(math.Max(slot-gap, 0.5)), num(base-top), esc(br.Color), esc(br.Label), esc(shortNum(br.Value)))
		if i%every == 0 {
			b.f(`<text class="tick" x="%s" y="%d" text-anchor="middle">%s</text>`, num(x0+(slot-gap)/2), chartH-padBottom+16, esc(br.Label))
		}
		if len(bars) <= 16 && v > 0 {
			b.f(`<text class="value" x="%s" y="%s" text-anchor="middle">%s</text>`, num(x0+(slot-gap)/2), num(top-4), esc(shortNum(v)))
		}
	}
	b.f(`</svg>`)
	return template.HTML(b.String()) // built from escaped parts
}

// shortNum formats a value for labels: integers plainly, others with up to
// three significant decimals, large values with k/M.
func shortNum(v float64) string {
	switch av := math.Abs(v); {
	case !finite(v):
		return "–"
	case av >= 1e6:
		return trimZeros(strconv.FormatFloat(v/1e6, 'f', 2, 64)) + "M"
	case av >= 1e4:
		return trimZeros(strconv.FormatFloat(v/1e3, 'f', 1, 64)) + "k"
	case v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case av >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case av >= 10:
		return trimZeros(strconv.FormatFloat(v, 'f', 1, 64))
	}
	return trimZeros(strconv.FormatFloat(v, 'f', 3, 64))
}
