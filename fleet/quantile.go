package fleet

import (
	"time"

	"github.com/replayctl/replayctl/stats"
)

// BucketQuantile returns the upper bound of the bucket of a merged 1-2-5
// latency histogram that holds quantile q (max for the open last bucket;
// 0 for an empty histogram): what a merged report can say of a percentile
// without averaging the shards' own.
func BucketQuantile(h []stats.LatencyBucket, q float64, max time.Duration) time.Duration {
	return bucketQuantile(h, q, max)
}
