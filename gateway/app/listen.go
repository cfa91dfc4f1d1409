package app

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/switchboard-gw/switchboard/gateway/config"
)

// listen opens the gateway's address. An address in use is the error a
// second gateway (or `make run` twice) meets: it says what to set instead.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen on %s: the address is already in use (another gateway?); stop that process or choose another address: "+
			"serve --listen HOST:PORT, listen: in the config, %s, or make run LISTEN=HOST:PORT: %w", addr, config.EnvListen, err)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}
