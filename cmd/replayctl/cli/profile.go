package cli

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// profiles writes a CPU profile and a heap profile of one command when their
// paths are set (`--cpuprofile`, `--memprofile`), for `go tool pprof`.
type profiles struct {
	cpu, mem string
	cpuFile  *os.File
}

// start opens the profile files (so that a bad path fails before any work)
// and starts the CPU profile.
func (p *profiles) start() error {
	if p.cpu != "" {
		f, err := os.Create(p.cpu)
		if err != nil {
			return usageError{fmt.Errorf("--cpuprofile: %w", err)}
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		p.cpuFile = f
	}
	if p.mem != "" {
		// Created now so that an unwritable path is a usage error before the
		// run, not a surprise after it.
		f, err := os.Create(p.mem)
		if err != nil {
			p.stopCPU()
			return usageError{fmt.Errorf("--memprofile: %w", err)}
		}
		_ = f.Close()
	}
	return nil
}

func (p *profiles) stopCPU() error {
	if p.cpuFile == nil {
		return nil
	}
	pprof.StopCPUProfile()
	err := p.cpuFile.Close()
	p.cpuFile = nil
	if err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	return nil
}

// stop ends the CPU profile and writes the heap profile (allocations over
// the whole run, and what is still in use after a GC).
func (p *profiles) stop() error {
	err := p.stopCPU()
	if p.mem != "" {
		f, cerr := os.Create(p.mem)
		if cerr != nil {
			return errors.Join(err, fmt.Errorf("--memprofile: %w", cerr))
		}
		runtime.GC()
		werr := pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			err = errors.Join(err, fmt.Errorf("--memprofile: %w", werr))
		}
	}
	return err
}
