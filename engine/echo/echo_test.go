package echo

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestEchoAnswersAndCounts(t *testing.T) {
	s, err := Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 3; i++ {
		resp, err := http.Post(s.URL()+"/orders/7", "text/plain", strings.NewReader("abc"))
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || body["path"] != "/orders/7" || body["method"] != "POST" || body["bytes"] != 3.0 {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
	}
	if s.Requests() != 3 {
		t.Fatalf("requests = %d, want 3", s.Requests())
	}
}
