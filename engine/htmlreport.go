package engine

import (
	"fmt"

	"github.com/replayctl/replayctl/scenario"
)

func writeHTMLReport(s *scenario.Scenario, res *jobResult, path string) error {
	return fmt.Errorf("html report %s: not available yet", path)
}
