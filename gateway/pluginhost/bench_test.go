package pluginhost_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
	"github.com/switchboard-gw/switchboard/plugins/webhook/webhook"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// noop is the "good" test plugin's behaviour in-process: Send does nothing,
// so comparing it with the plugin isolates the cost of the RPC itself.
type noop struct{}

func (noop) Describe(context.Context) (sdk.Description, error)                       { return sdk.Description{}, nil }
func (noop) Configure(context.Context, sdk.InstanceConfig) error                     { return nil }
func (noop) HandleHTTP(context.Context, *sdk.HTTPRequest) (*sdk.HTTPResponse, error) { return nil, nil }
func (noop) Send(_ context.Context, b []sdk.Outbound) ([]sdk.SendResult, error) {
	return make([]sdk.SendResult, len(b)), nil
}

// BenchmarkSend compares a Send through the plugin host (gRPC to a plugin
// process) with a direct call of the same Channel in-process, for the
// webhook plugin posting to a local sink and for a no-op channel. Per-call
// p50/p99 latencies are reported beside ns/op; ns/msg is the per-message
// cost in a batch.
func BenchmarkSend(b *testing.B) {
	sinkSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer sinkSrv.Close()
	cfg := sdk.InstanceConfig{
		ChannelID: "wh-1",
		Config:    json.RawMessage(`{"url": "` + sinkSrv.URL + `"}`),
		Secrets:   map[string]string{"signing_secret": secret},
	}
	direct := webhook.New(webhook.Options{AllowInternal: true})
	if err := direct.Configure(context.Background(), cfg); err != nil {
		b.Fatal(err)
	}
	e := newEnv(b, map[string]string{"webhook": webhookBin, "good": misbehaveBin}, func(c *pluginhost.Config) {
		c.Instances = func(_ context.Context, name string) ([]sdk.InstanceConfig, error) {
			if name == "webhook" {
				return []sdk.InstanceConfig{cfg}, nil
			}
			return nil, nil
		}
	})
	e.start(b)
	viaWebhook, err := e.host.Channel("webhook")
	if err != nil {
		b.Fatal(err)
	}
	viaNoop, err := e.host.Channel("good")
	if err != nil {
		b.Fatal(err)
	}

	for _, target := range []struct {
		name string
		ch   sdk.Channel
	}{
		{"webhook/direct", direct},
		{"webhook/plugin", viaWebhook},
		{"noop/direct", noop{}},
		{"noop/plugin", viaNoop},
	} {
		for _, size := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", target.name, size), func(b *testing.B) {
				benchSend(b, target.ch, size)
			})
		}
	}
}

func benchSend(b *testing.B, ch sdk.Channel, size int) {
	batch := make([]sdk.Outbound, size)
	for i := range batch {
		batch[i] = sdk.Outbound{
			ChannelID: "wh-1", IdempotencyKey: fmt.Sprintf("k-%d", i),
			Recipient: fmt.Sprintf("user-%d", i%10), Content: message.Text("hello, this is a benchmark"), Attempt: 1,
		}
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		results, err := ch.Send(ctx, batch)
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range results {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	var total time.Duration
	for _, l := range lat {
		total += l
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(len(lat)*size), "ns/msg")
}
