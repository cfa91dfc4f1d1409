package app

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"

	"github.com/switchboard-gw/switchboard/gateway/config"
)

// nodeName is this process's id in the claims it holds: configured, or
// the host and the listen port, which a restarted process keeps (so it
// takes its own claims back at once) and two processes on one host differ
// by.
func nodeName(cfg *config.Config) string {
	if cfg.Cluster.NodeID != "" {
		return cfg.Cluster.NodeID
	}
	host, _ := os.Hostname()
	if len(host) > 32 {
		host = host[:32]
	}
	_, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil || port == "0" {
		return nodeID() // no stable port: a new node each start
	}
	return host + ":" + port
}

// nodeID names this process among gateway nodes: the host, for operators,
// and a random part, since a restarted process is a new node.
func nodeID() string {
	host, _ := os.Hostname() // unnamed hosts still get a unique id
	if len(host) > 32 {
		host = host[:32]
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return host + "-" + hex.EncodeToString(b)
}
