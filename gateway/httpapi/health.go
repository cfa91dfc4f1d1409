package httpapi

import (
	"context"
	"net/http"
	"time"
)

// Pinger checks that the store answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// PluginStatus is one plugin's state as /readyz shows it.
type PluginStatus struct {
	Name     string `json:"name"`
	Version  string `json:"version,omitempty"`
	State    string `json:"state"`
	Error    string `json:"error,omitempty"`
	Restarts int    `json:"restarts"`
	// Channels are the plugin's channel instances and their health.
	Channels []ChannelHealth `json:"channels"`
}

// ChannelHealth is one channel instance's health as its plugin reports it.
type ChannelHealth struct {
	ID      string `json:"id"`
	Healthy bool   `json:"healthy"`
	Reason  string `json:"reason,omitempty"`
}

// Health serves /healthz (the process answers) and /readyz (the store
// answers; plugin states are reported, and a failed plugin degrades but does
// not fail readiness, because the node still serves every other channel).
type Health struct {
	Store   Pinger
	Plugins func() []PluginStatus
	// Node is this gateway's node id (cluster.node_id), so an operator
	// behind a load balancer sees which node answered.
	Node string
}

func (h *Health) healthz(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *Health) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	out := struct {
		Status  string         `json:"status"`
		Node    string         `json:"node,omitempty"`
		Store   string         `json:"store"`
		Plugins []PluginStatus `json:"plugins"`
	}{Status: "ok", Node: h.Node, Store: "ok", Plugins: []PluginStatus{}}
	if h.Plugins != nil {
		out.Plugins = h.Plugins()
	}
	for _, p := range out.Plugins {
		if p.State != "running" {
			out.Status = "degraded"
		}
	}
	status := http.StatusOK
	if err := h.Store.Ping(ctx); err != nil {
		out.Status, out.Store = "unavailable", err.Error()
		status = http.StatusServiceUnavailable
	}
	WriteJSON(w, status, out)
}
