package cli

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// portHolder names the process listening on addr's TCP port, as
// "pid N (COMMAND LINE)", from /proc: the listening socket's inode in
// /proc/net/tcp and tcp6, then the process with a descriptor on it. "" when
// it is not found (another user's process, which only root may look into).
func portHolder(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return ""
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		listeningInodes(f, uint16(p), inodes)
	}
	if len(inodes) == 0 {
		return ""
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		link, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(link, "socket:[") || !inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
			continue
		}
		pid := strings.Split(fd, "/")[2]
		cmd, _ := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		line := strings.Join(strings.Fields(strings.ReplaceAll(string(cmd), "\x00", " ")), " ")
		if r := []rune(line); len(r) > 80 {
			line = string(r[:80]) + "…"
		}
		if line == "" {
			return "pid " + pid
		}
		return fmt.Sprintf("pid %s (%s)", pid, line)
	}
	return ""
}

// listeningInodes adds to inodes those of the sockets that /proc/net/tcp
// (or tcp6) lists as listening (state 0A) on port, whatever their address.
func listeningInodes(file string, port uint16, inodes map[string]bool) {
	f, err := os.Open(file)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if p, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil && uint16(p) == port && fields[9] != "0" {
			inodes[fields[9]] = true
		}
	}
}
