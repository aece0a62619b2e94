package scenario

import "testing"

// TestTopicNames: a Kafka topic name (topics.*.name, kafka.catalog-topic)
// is 1 to 249 of A-Z a-z 0-9 . _ -, once its references are read. The
// schema took $ { } : ? too (for editors' sake), so validate passed
// "a$b" and a catalog topic "bad topic", which the broker refuses at run
// time.
func TestTopicNames(t *testing.T) {
	env := envOf(map[string]string{"ENV": "dev", "BAD": "a:b"})
	for _, tc := range []struct {
		name, kafka, topic string
		ok                 bool
	}{
		{"plain", "", "traffic.http_1-x", true},
		{"reference", "", "traffic-${ENV}", true},
		{"dollar", "", "a$$b", false},
		{"braces", "", "a{b}", false},
		{"colon", "", "a:b", false},
		{"question", "", "a?b", false},
		{"colon from a variable", "", "${BAD}", false},
		{"catalog", "{catalog-topic: 'windows-${ENV}'}", "t", true},
		{"catalog with a space", "{catalog-topic: bad topic}", "t", false},
		{"catalog with a colon", "{catalog-topic: 'a:b'}", "t", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "version: 1\nname: s\n"
			if tc.kafka != "" {
				src += "kafka: " + tc.kafka + "\n"
			}
			src += "topics:\n  t: {name: '" + tc.topic + "'}\njobs:\n  j:\n    source: {gor: {path: in.gor}}\n    sink: {kafka: {topic: t}}\n"
			_, err := LoadBytes("s.yaml", []byte(src), Options{Env: env})
			if (err == nil) != tc.ok {
				t.Errorf("%s: got %v, want ok %v", src, err, tc.ok)
			}
		})
	}
}
