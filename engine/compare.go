package engine

import (
	"fmt"

	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/sinks/httpsink"
)

// comparison joins replayed responses with recorded ones.
type comparison struct{}

func newComparison(r *runner, j *scenario.Job) (*comparison, error) {
	if j.Compare == nil {
		return nil, nil
	}
	return nil, fmt.Errorf("%s: compare is not available yet", j.Pos)
}

func (c *comparison) recorded(m *message.Message)         {}
func (c *comparison) sent(m *message.Message, raw []byte) {}
func (c *comparison) replayed(res httpsink.Result)        {}
func (c *comparison) finish() any                         { return nil }
