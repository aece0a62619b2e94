package gorimport

import (
	"strings"
	"testing"
)

// TestPastedCommandLine: a gor command line pasted whole, program name
// included ("gor …", "sudo ./goreplay …"), converts as its flags do; an
// unknown flag's warning names the known flag it is a typo of; and a
// refusal (no output) says what made it (an argument that ended gor's
// flags), since the warnings of a refused command line are not printed.
func TestPastedCommandLine(t *testing.T) {
	flags := []string{"--input-raw", ":8080", "--output-http", "http://staging:8080"}
	want, err := Convert(flags)
	if err != nil {
		t.Fatal(err)
	}
	for _, prog := range [][]string{{"gor"}, {"./gor"}, {"/usr/local/bin/goreplay"}, {"sudo", "gor"}} {
		res, err := Convert(append(prog, flags...))
		if err != nil {
			t.Errorf("%q: %v", prog, err)
			continue
		}
		if len(res.Warnings) != 0 || !strings.Contains(string(res.YAML), "ports: [8080]") || !strings.Contains(string(res.YAML), "target: staging") {
			t.Errorf("%q: warnings %q, YAML\n%s\nwant as without it:\n%s", prog, res.Warnings, res.YAML, want.YAML)
		}
	}

	res, _ := load(t, "--input-raw", ":8080", "--output-http", "http://staging:8080", "--http-alow-method", "GET")
	if !hasWarning(res.Warnings, `unknown gor flag --http-alow-method "GET" not mapped (did you mean --http-allow-method?)`) {
		t.Errorf("warnings %q: no suggestion for a typo", res.Warnings)
	}

	_, err = Convert([]string{"--input-raw", ":8080", "output-http", "http://staging:8080"})
	if err == nil || !strings.Contains(err.Error(), "no output") || !strings.Contains(err.Error(), `argument "output-http" is not a flag`) {
		t.Errorf("err = %v, want no output, saying why", err)
	}
}
