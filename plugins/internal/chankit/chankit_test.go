package chankit_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/plugins/internal/chankit"
	"github.com/switchboard-gw/switchboard/sdk"
)

func TestSplit(t *testing.T) {
	cases := []struct {
		text string
		max  int
		want []string
	}{
		{"", 10, nil},
		{"short", 10, []string{"short"}},
		{"line one\nline two", 12, []string{"line one", "line two"}},
		{"alpha beta gamma", 11, []string{"alpha beta", "gamma"}},
		{"abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"😀😀😀", 4, []string{"😀😀", "😀"}}, // an emoji counts 2 UTF-16 units
		{"a\nb c d", 5, []string{"a", "b c d"}},
	}
	for _, tc := range cases {
		got := chankit.Split(tc.text, tc.max)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("Split(%q, %d) = %q, want %q", tc.text, tc.max, got, tc.want)
		}
		for _, p := range got {
			if chankit.Len(p) > tc.max {
				t.Errorf("part %q longer than %d", p, tc.max)
			}
		}
	}
}

func TestSendOrderedHoldsBackOnlyRetryableFailures(t *testing.T) {
	errs := map[string]error{
		"1": sdk.RateLimited(0, "429", ""),
		"3": sdk.Permanent("bad", ""),
	}
	var sent []string
	batch := []sdk.Outbound{
		{IdempotencyKey: "1", Recipient: "a"}, {IdempotencyKey: "2", Recipient: "a"},
		{IdempotencyKey: "3", Recipient: "b"}, {IdempotencyKey: "4", Recipient: "b"},
	}
	res := chankit.SendOrdered(context.Background(), batch, func(_ context.Context, o sdk.Outbound) (string, error) {
		sent = append(sent, o.IdempotencyKey)
		return "p" + o.IdempotencyKey, errs[o.IdempotencyKey]
	})
	if strings.Join(sent, ",") != "1,3,4" {
		t.Fatalf("sent %v, want 1,3,4", sent)
	}
	if res[1].Err != errs["1"] || res[3].Err != nil || res[3].ProviderID != "p4" || res[1].IdempotencyKey != "2" {
		t.Fatalf("results %+v", res)
	}
}

func TestDecodeConfig(t *testing.T) {
	var cfg struct {
		N int    `json:"n"`
		S string `json:"s"`
	}
	for raw, field := range map[string]string{`{"n":"x"}`: "n", `{"zz":1}`: "zz", `[1]`: "config"} {
		p := chankit.Problems{}
		chankit.DecodeConfig(json.RawMessage(raw), &cfg, p)
		var ce *sdk.ConfigError
		if !errors.As(p.Err(), &ce) || ce.Fields[field] == "" {
			t.Errorf("%s: want a problem with %q, got %v", raw, field, p.Err())
		}
	}
	p := chankit.Problems{}
	chankit.DecodeConfig(nil, &cfg, p)
	if p.Err() != nil {
		t.Fatalf("empty config: %v", p.Err())
	}
}
