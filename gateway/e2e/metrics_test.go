package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// TestMetricsAnswerIsItHealthy sends a flow_trigger and reads /metrics and
// /readyz as an operator's scraper would: requests by route and status,
// outcomes and latency by channel, jobs by kind, the queue and outbox
// gauges, plugin and channel health, and which node answered. The gateway
// runs as a process of its own, so its counters count only this test.
func TestMetricsAnswerIsItHealthy(t *testing.T) {
	t.Parallel()
	sink := gatewaytest.NewSink(t, gatewaytest.OutboundSecret)
	cfg := gatewaytest.Config(t, gatewaytest.Options{Plugins: []string{"webhook"}, Configure: func(cfg *config.Config) {
		cfg.Cluster.NodeID = "metrics-node"
	}})
	st := gatewaytest.OpenStore(t, cfg)
	t.Cleanup(func() { st.Close() })
	gatewaytest.ApplyTo(t, st, demoWorkspace(t, sink.URL))
	key := gatewaytest.NewKey(t, st, "demo", store.ScopeChannel, "demo-webhook")
	p := gatewaytest.StartProcess(t, cfg)
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/v1/api/broadcasts", strings.NewReader(seedBroadcast))
	req.Header.Set("content-type", "application/json")
	req.Header.Set("x-api-key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("broadcast: %d", resp.StatusCode)
	}
	sink.WaitFor(t, 2, 10*time.Second)
	want := []string{
		`switchboard_http_requests_total{route="POST /v1/api/broadcasts",status="200"} 1`,
		`switchboard_delivery_results_total{channel="demo-webhook",reason="",status="sent"} 2`,
		`switchboard_delivery_latency_seconds_count{channel="demo-webhook"} 2`,
		`switchboard_jobs_total{kind="conversation",outcome="completed"} 1`,
		`switchboard_plugin_up{plugin="webhook",state="running"} 1`,
		`switchboard_channel_healthy{channel="demo-webhook",plugin="webhook"} 1`,
		`switchboard_node_info{node="metrics-node"`,
		`switchboard_metrics_store_errors_total 0`,
		`switchboard_cluster_takeovers_total 0`,
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var missing []string
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q in:\n%s", missing, body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	resp, err = http.Get(p.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ready struct {
		Status  string `json:"status"`
		Node    string `json:"node"`
		Plugins []struct {
			Name     string `json:"name"`
			Channels []struct {
				ID      string `json:"id"`
				Healthy bool   `json:"healthy"`
			} `json:"channels"`
		} `json:"plugins"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ready); err != nil {
		t.Fatal(err)
	}
	if ready.Status != "ok" || ready.Node != "metrics-node" {
		t.Fatalf("readyz = %+v, want ok from node metrics-node", ready)
	}
	found := false
	for _, p := range ready.Plugins {
		for _, c := range p.Channels {
			found = found || (p.Name == "webhook" && c.ID == "demo-webhook" && c.Healthy)
		}
	}
	if !found {
		t.Fatalf("readyz does not show the healthy demo-webhook channel: %+v", ready.Plugins)
	}
}

// TestMetricsTokenAndListener: with metrics.token, /metrics needs it; with
// metrics.listen, /metrics moves to that address and the API's listener
// no longer serves it.
func TestMetricsTokenAndListener(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(cfg *config.Config) {
		cfg.Metrics.Token, cfg.Metrics.Listen = "s3cret", addr
	}})
	get := func(url, token string) int {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		url, token string
		want       int
	}{
		{g.URL + "/metrics", "s3cret", http.StatusNotFound},
		{"http://" + addr + "/metrics", "", http.StatusUnauthorized},
		{"http://" + addr + "/metrics", "wrong", http.StatusUnauthorized},
		{"http://" + addr + "/metrics", "s3cret", http.StatusOK},
	} {
		if got := get(c.url, c.token); got != c.want {
			t.Errorf("GET %s with token %q = %d, want %d", c.url, c.token, got, c.want)
		}
	}
}
