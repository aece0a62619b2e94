// Package sample decides which messages a sampled job keeps, by a consistent
// hash of a key (a user, session or connection ID), so all messages with the
// same key are kept or dropped together, in every run and on every host.
package sample

// FNV-1a 64-bit parameters.
const (
	offset64 = 14695981039346656037
	prime64  = 1099511628211
)

// Hash returns the 64-bit FNV-1a hash of key, mixed with the SplitMix64
// finalizer so short, similar keys spread over all 64 bits.
func Hash(key string) uint64 {
	h := uint64(offset64)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime64
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// Point maps key to [0, 100).
func Point(key string) float64 {
	return float64(Hash(key)>>11) / (1 << 53) * 100
}

// Keep reports whether the message with this key is in a percent sample.
// percent <= 0 keeps nothing and percent >= 100 keeps everything. The empty
// key is hashed like any other, so messages without a key are kept or
// dropped together.
func Keep(key string, percent float64) bool {
	if percent >= 100 {
		return true
	}
	if !(percent > 0) { // also NaN
		return false
	}
	return Point(key) < percent
}
