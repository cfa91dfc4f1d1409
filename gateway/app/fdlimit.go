package app

import "syscall"

// defaultMaxConnections leaves a quarter of the open-file limit (at least
// 256 descriptors) to the store, plugin pipes and outbound requests. The Go
// runtime has already raised the soft limit to the hard one at start-up.
func defaultMaxConnections() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return fallbackMaxConnections
	}
	n := int(min(rl.Cur, 1<<30))
	return max(n-max(n/4, 256), 64)
}

// fallbackMaxConnections caps connections when the open-file limit cannot
// be read.
const fallbackMaxConnections = 4096
