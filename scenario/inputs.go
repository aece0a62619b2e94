package scenario

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// input is a file the scenario reads or an interface it captures on, as
// declared, for the checks of CheckInputs.
type input struct {
	pos   Pos
	path  string // display path of the key
	raw   string // as written
	abs   string // file: resolved
	iface bool
}

// noteInput records a file the scenario reads.
func (d *decoder) noteInput(n *yaml.Node, path string, p Path) {
	if n == nil || !p.IsSet() {
		return
	}
	d.inputs = append(d.inputs, input{pos: d.pos(n), path: path, raw: p.Raw, abs: p.Abs})
}

// noteInterface records a capture interface.
func (d *decoder) noteInterface(n *yaml.Node, path string) {
	if n == nil || n.Value == "" {
		return
	}
	d.inputs = append(d.inputs, input{pos: d.pos(n), path: path, raw: n.Value, iface: true})
}

// checkInputs returns a warning for each input file that does not exist
// (for a gor source: a pattern no file matches) and each capture interface
// this host does not have. They are warnings, not errors: the files and
// interfaces may exist only where and when the scenario runs.
func checkInputs(ins []input) Diagnostics {
	var ws Diagnostics
	for _, in := range ins {
		var msg string
		switch {
		case in.iface:
			if in.raw == "any" {
				break // every interface (the capture's AF_PACKET "any")
			}
			if _, err := net.InterfaceByName(in.raw); err != nil {
				msg = fmt.Sprintf("interface %s does not exist on this host (it must where the scenario runs)", in.raw)
			}
		case strings.ContainsAny(in.raw, "*?["):
			if m, err := filepath.Glob(in.abs); err == nil && len(m) == 0 {
				msg = fmt.Sprintf("no file matches %s (yet: it must when the scenario runs)", in.raw)
			}
		default:
			if fi, err := os.Stat(in.abs); err != nil {
				msg = fmt.Sprintf("%s: %v (it must exist when the scenario runs)", in.raw, pathErr(err))
			} else if fi.IsDir() {
				msg = fmt.Sprintf("%s is a directory, not a file", in.raw)
			}
		}
		if msg != "" {
			ws = append(ws, Diagnostic{in.pos, "warning: " + in.path + ": " + msg})
		}
	}
	return ws
}

// pathErr is an os error without the path it repeats.
func pathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
