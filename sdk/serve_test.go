package sdk

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestWatchParentNoticesReparenting(t *testing.T) {
	t.Parallel()
	var ppid atomic.Int64
	ppid.Store(4242)
	gone := make(chan struct{})
	go watchParent(4242, func() int { return int(ppid.Load()) }, time.Millisecond, func() { close(gone) })
	ppid.Store(1) // the gateway died; init adopted us
	<-gone        // the test times out if the watchdog never fires
}
