package app

import (
	"github.com/switchboard-gw/switchboard/gateway/inbound"
	"github.com/switchboard-gw/switchboard/gateway/webchat"
)

// newWebchat builds the web chat service: it holds the websockets of
// websocket channels (the Assistant), feeds their frames to the plugin, and
// is the outbox the delivery pipeline sends those channels' messages to
// (a.Webchat.Plugins wraps the plugin host for the pipeline). Session
// tokens are signed with keys derived from the gateway's secret_key. On
// PostgreSQL, which several nodes may share, the process joins them as a
// node of its own: messages stored here wake the nodes holding their
// users' connections (LISTEN/NOTIFY).
func (a *App) newWebchat() (*webchat.Service, error) {
	opts := webchat.Options{
		Store:   a.Store,
		Plugins: a.Host,
		Events:  &inbound.Sink{Store: a.Store, Queue: a.Queue},
		Queue:   a.Queue,
		// Web chat presence holds under a lease as long as the node's
		// claims do: a dead node's users count offline, and its messages
		// are re-evaluated, as soon as its work is taken over.
		Limits:    webchat.Limits{Retention: a.cfg.Webchat.Retention, NodeTTL: a.cfg.Cluster.Lease},
		SecretKey: a.cfg.SecretKey,
		Logger:    a.log,
	}
	node := nodeID()
	if w, ok := a.Store.WebchatWakeups(node, a.log); ok {
		opts.Wakeups, opts.Node = w, node
	}
	return webchat.New(opts)
}
