//go:build !race

package fleet_test

// raceBuild makes TestMain build replayctl with the race detector too.
const raceBuild = false
