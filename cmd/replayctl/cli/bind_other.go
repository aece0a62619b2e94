//go:build !linux

package cli

// portHolder is "": only Linux tells cheaply (/proc) which process listens
// on a port.
func portHolder(string) string { return "" }
