package serve

import (
	"regexp"
	"strings"
	"testing"
)

// TestUIBuildsNoMarkupFromData keeps the web UI free of HTML sinks: every
// value the API returns (window, job, agent and scenario names, reasons,
// labels, progress lines: text from Kafka records anyone with write access
// to the topics may have written) becomes a text node or an attribute
// through h(), never markup. The one exception is the report, which serve
// renders with html/template and the UI shows in an iframe sandboxed
// without scripts.
func TestUIBuildsNoMarkupFromData(t *testing.T) {
	js, err := uiFiles.ReadFile("ui/app.js")
	if err != nil {
		t.Fatal(err)
	}
	src := string(js)
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "javascript:", "createContextualFragment", "DOMParser"} {
		if strings.Contains(src, sink) {
			t.Errorf("app.js uses %s", sink)
		}
	}
	if n := strings.Count(src, "srcdoc"); n != 1 {
		t.Errorf("app.js sets srcdoc %d times, want only the report's", n)
	}
	frame := regexp.MustCompile(`h\('iframe', \{[^}]*\}`).FindString(src)
	if !strings.Contains(frame, "sandbox: 'allow-same-origin'") || strings.Contains(frame, "allow-scripts") {
		t.Errorf("the report iframe %q: want sandbox without allow-scripts", frame)
	}
	// h() sets attributes with setAttribute and children as text nodes.
	if !strings.Contains(src, "document.createTextNode(String(kid))") {
		t.Error("h() no longer makes text nodes of its children")
	}
	// Handlers are attached from code only: an attribute named on… from data
	// would be an event handler.
	if !strings.Contains(src, "if (k.startsWith('on')) el.addEventListener(k.slice(2), v);") {
		t.Error("h() no longer attaches on… attributes as listeners")
	}
}
