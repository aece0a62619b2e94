package scenario

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// topicConfigKind is what a Kafka topic config's value must be.
type topicConfigKind int

const (
	cfgLong   topicConfigKind = iota // an integer (ms, bytes, counts); -1 allowed where Kafka allows it
	cfgRatio                         // a number between 0 and 1
	cfgBool                          // true or false
	cfgList                          // a comma-separated list or free text (not checked)
	cfgChoice                        // one of choices
	cfgPolicy                        // cleanup.policy: delete, compact, or both separated by a comma
)

type topicConfig struct {
	kind    topicConfigKind
	choices []string
	// min is the least value of a cfgLong (0 unless set; anyInt: any).
	min    int64
	anyInt bool
}

// topicConfigs are Apache Kafka's topic-level configs (Kafka 3.x and 4.x):
// a key outside them, or a value of the wrong kind, is refused by a real
// broker when the topic is created and quietly kept by the embedded one.
var topicConfigs = map[string]topicConfig{
	"cleanup.policy":                          {kind: cfgPolicy},
	"compression.type":                        {kind: cfgChoice, choices: []string{"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}},
	"compression.gzip.level":                  {kind: cfgLong, anyInt: true},
	"compression.lz4.level":                   {kind: cfgLong, anyInt: true},
	"compression.zstd.level":                  {kind: cfgLong, anyInt: true},
	"delete.retention.ms":                     {kind: cfgLong},
	"file.delete.delay.ms":                    {kind: cfgLong},
	"flush.messages":                          {kind: cfgLong, min: 1},
	"flush.ms":                                {kind: cfgLong},
	"follower.replication.throttled.replicas": {kind: cfgList},
	"index.interval.bytes":                    {kind: cfgLong},
	"leader.replication.throttled.replicas":   {kind: cfgList},
	"local.retention.bytes":                   {kind: cfgLong, min: -2},
	"local.retention.ms":                      {kind: cfgLong, min: -2},
	"max.compaction.lag.ms":                   {kind: cfgLong, min: 1},
	"max.message.bytes":                       {kind: cfgLong},
	"message.downconversion.enable":           {kind: cfgBool},
	"message.format.version":                  {kind: cfgList},
	"message.timestamp.after.max.ms":          {kind: cfgLong},
	"message.timestamp.before.max.ms":         {kind: cfgLong},
	"message.timestamp.difference.max.ms":     {kind: cfgLong},
	"message.timestamp.type":                  {kind: cfgChoice, choices: []string{"CreateTime", "LogAppendTime"}},
	"min.cleanable.dirty.ratio":               {kind: cfgRatio},
	"min.compaction.lag.ms":                   {kind: cfgLong},
	"min.insync.replicas":                     {kind: cfgLong, min: 1},
	"preallocate":                             {kind: cfgBool},
	"remote.log.copy.disable":                 {kind: cfgBool},
	"remote.log.delete.on.disable":            {kind: cfgBool},
	"remote.storage.enable":                   {kind: cfgBool},
	"retention.bytes":                         {kind: cfgLong, min: -1},
	"retention.ms":                            {kind: cfgLong, min: -1},
	"segment.bytes":                           {kind: cfgLong, min: 14},
	"segment.index.bytes":                     {kind: cfgLong, min: 4},
	"segment.jitter.ms":                       {kind: cfgLong},
	"segment.ms":                              {kind: cfgLong, min: 1},
	"unclean.leader.election.enable":          {kind: cfgBool},
}

// checkTopicConfig returns why value is not a valid value of the topic
// config key ("" when it is), and whether that is only a warning: a key
// Apache Kafka does not know may be a newer one or another broker's
// (confluent.*, redpanda.*), which a real broker refuses at creation if it
// does not know it either.
func checkTopicConfig(key, value string) (msg string, warning bool) {
	c, ok := topicConfigs[key]
	if !ok {
		return unknownTopicConfig(key), true
	}
	return checkTopicConfigValue(key, value, c), false
}

func unknownTopicConfig(key string) string {
	{
		names := make([]string, 0, len(topicConfigs))
		for k := range topicConfigs {
			names = append(names, k)
		}
		slices.Sort(names)
		if s := suggest(key, names); s != "" {
			return fmt.Sprintf("%q is not an Apache Kafka topic config (did you mean %q?)", key, s)
		}
		return fmt.Sprintf("%q is not an Apache Kafka topic config; a broker that does not know it refuses the topic", key)
	}
}

func checkTopicConfigValue(key, value string, c topicConfig) string {
	v := strings.TrimSpace(value)
	switch c.kind {
	case cfgLong:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Sprintf("%s must be an integer (Kafka's unit: ms or bytes), not %q", key, value)
		}
		if !c.anyInt && n < c.min {
			return fmt.Sprintf("%s must be at least %d, not %q", key, c.min, value)
		}
	case cfgPolicy:
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "delete" && p != "compact" {
				return fmt.Sprintf("%s must be delete, compact or \"delete,compact\", not %q", key, value)
			}
		}
	case cfgRatio:
		if f, err := strconv.ParseFloat(v, 64); err != nil || f < 0 || f > 1 {
			return fmt.Sprintf("%s must be a number between 0 and 1, not %q", key, value)
		}
	case cfgBool:
		if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			return fmt.Sprintf("%s must be true or false, not %q", key, value)
		}
	case cfgChoice:
		if !slices.Contains(c.choices, v) {
			return fmt.Sprintf("%s must be one of %s, not %q", key, strings.Join(c.choices, ", "), value)
		}
	}
	return ""
}
