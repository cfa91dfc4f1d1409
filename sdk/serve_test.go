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
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the watchdog did not notice the parent was gone")
	}
}
