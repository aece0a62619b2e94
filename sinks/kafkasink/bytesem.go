package kafkasink

import (
	"context"
	"sync"
)

// byteSem is a weighted semaphore of max bytes. Waiters are woken on every
// release and retry; with one writer (the Sink contract) that is fair.
type byteSem struct {
	mu   sync.Mutex
	max  int64
	used int64
	wake chan struct{} // closed by the next release; nil while nobody waits
}

// acquire takes n bytes (n <= max), waiting until they are free or ctx ends.
// It reports whether it had to wait.
func (b *byteSem) acquire(ctx context.Context, n int64) (waited bool, err error) {
	b.mu.Lock()
	for b.used+n > b.max {
		if b.wake == nil {
			b.wake = make(chan struct{})
		}
		wake := b.wake
		b.mu.Unlock()
		waited = true
		select {
		case <-wake:
		case <-ctx.Done():
			return true, ctx.Err()
		}
		b.mu.Lock()
	}
	b.used += n
	b.mu.Unlock()
	return waited, nil
}

// tryAcquire takes n bytes when they are free, without waiting.
func (b *byteSem) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

// release gives back n bytes and wakes the waiters.
func (b *byteSem) release(n int64) {
	b.mu.Lock()
	b.used -= n
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
	b.mu.Unlock()
}
