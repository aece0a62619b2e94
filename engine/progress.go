package engine

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// startProgress shows a job's progress until the returned stop is called: a
// redrawn status line on a terminal (or with --progress always), log lines
// every 5 s with -v otherwise, nothing else. stop may be called again: a
// record job stops its progress when its source ends and again when its
// sink has closed (with a kafka sink, a second progress shows the close).
func startProgress(opts Options, job string, status func() string) (stop func()) {
	bar := opts.Progress == ProgressAlways || (opts.Progress == ProgressAuto && isTerminal(opts.Err))
	if !bar && !opts.Verbose && opts.OnProgress == nil {
		return func() {}
	}
	every := time.Second
	if !bar && opts.OnProgress == nil {
		every = 5 * time.Second
	}
	ticks := 0
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				if bar {
					fmt.Fprintf(opts.Err, "\r\033[K")
				}
				return
			case <-t.C:
				ticks++
				st := status()
				if opts.OnProgress != nil {
					opts.OnProgress(job, st)
				}
				line := fmt.Sprintf("[%s %s] %s", job, time.Since(start).Truncate(time.Second), st)
				switch {
				case bar:
					fmt.Fprintf(opts.Err, "\r\033[K%s", line)
				case opts.Verbose && (opts.OnProgress == nil || ticks%5 == 0):
					opts.Logger.Info("progress", "job", job, "status", st)
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-finished
	}
}

// bar draws a text progress bar of width cells for done out of total.
func bar(done, total int64, width int) string {
	if total <= 0 {
		return ""
	}
	filled := int(float64(width) * float64(min(done, total)) / float64(total))
	b := make([]rune, width)
	for i := range b {
		if i < filled {
			b[i] = '█'
		} else {
			b[i] = '░'
		}
	}
	return string(b)
}
