package app

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
)

// TestListenAddressInUseSaysWhatToSet: the error of a taken address names
// it and the settings that choose another, and still wraps EADDRINUSE.
func TestListenAddressInUseSaysWhatToSet(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	ln, err := listen(addr)
	if err == nil {
		ln.Close()
		t.Fatalf("listened twice on %s", addr)
	}
	for _, want := range []string{addr, "already in use", "--listen", "SWITCHBOARD_LISTEN", "LISTEN="} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %v does not wrap EADDRINUSE", err)
	}
}
