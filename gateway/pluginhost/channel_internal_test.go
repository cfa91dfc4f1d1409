package pluginhost

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestPluginDown(t *testing.T) {
	live := context.Background()
	canceled, cancel := context.WithCancel(live)
	cancel()
	closing := status.Error(codes.Canceled, "grpc: the client connection is closing")
	answer := status.Error(codes.InvalidArgument, "bad frame")
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		down bool
	}{
		{"unavailable", live, status.Error(codes.Unavailable, "connection refused"), true},
		{"connection closed under a live call", live, closing, true},
		{"the caller's own cancellation", canceled, closing, false},
		{"the plugin's answer", live, answer, false},
		{"no error", live, nil, false},
	} {
		got := pluginDown(tc.ctx, "p", tc.err)
		if errors.Is(got, ErrPluginDown) != tc.down {
			t.Errorf("%s: pluginDown(%v) = %v, want down=%v", tc.name, tc.err, got, tc.down)
		}
		if !tc.down && got != tc.err {
			t.Errorf("%s: error changed to %v", tc.name, got)
		}
	}
}
