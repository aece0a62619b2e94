package engine

import "time"

// SetLiveDrain sets liveDrain for a test and returns what restores it.
func SetLiveDrain(d time.Duration) (restore func()) {
	old := liveDrain
	liveDrain = d
	return func() { liveDrain = old }
}
