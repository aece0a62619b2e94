//go:build !linux

package capture

import (
	"context"
	"errors"

	"github.com/replayctl/replayctl/message"
)

// Live is only available on Linux (AF_PACKET).
func Live(ctx context.Context, iface string, cfg LiveConfig, emit func(*message.Message) error) (Stats, error) {
	return nil, errors.New("capture: live capture needs Linux (AF_PACKET)")
}

// Live is only available on Linux (AF_PACKET).
func (a *Assembler) Live(ctx context.Context, iface string, cfg LiveConfig) error {
	a.Close()
	return errors.New("capture: live capture needs Linux (AF_PACKET)")
}
