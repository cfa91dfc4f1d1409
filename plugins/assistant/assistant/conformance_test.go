package assistant_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-gw/switchboard/plugins/assistant/assistant"
	"github.com/switchboard-gw/switchboard/sdk"
	"github.com/switchboard-gw/switchboard/sdk/channeltest"
)

// binary is the built plugin, compiled once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "assistant-plugin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "assistant")
	code := 1
	if err := channeltest.BuildPlugin("github.com/switchboard-gw/switchboard/plugins/assistant", binary); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func harness(ch sdk.Channel) channeltest.SocketHarness {
	return channeltest.SocketHarness{
		Channel: ch,
		Config: func(id string) sdk.InstanceConfig {
			return config(id, `{"allowed_origins":["https://shop.example.com"]}`, nil)
		},
		InvalidConfigs: []channeltest.InvalidConfig{
			{Name: "bad origin", Config: config("", `{"allowed_origins":["shop.example.com"]}`, nil), Fields: []string{"allowed_origins[0]"}},
			{Name: "no session key", Config: config("", `{}`, map[string]string{}), Fields: []string{assistant.SecretSessionKey}},
		},
		Hello: func() []byte { return []byte(`{"type":"hello"}`) },
		Message: func(id, text string) []byte {
			return fmt.Appendf(nil, `{"type":"message","request_id":%q,"text":%q}`, id, text)
		},
		Ack:       func(seq int64) []byte { return fmt.Appendf(nil, `{"type":"ack","seq":%d}`, seq) },
		Malformed: [][]byte{[]byte(`not json`), []byte(`{"type":"message"}`), []byte(`{"type":"dance"}`)},
		ResumeReset: func(f []byte) (int64, error) {
			var v struct {
				Type    string `json:"type"`
				LastSeq int64  `json:"last_seq"`
			}
			if err := json.Unmarshal(f, &v); err != nil {
				return 0, err
			}
			if v.Type != "resume_reset" {
				return 0, fmt.Errorf("frame type %q, want resume_reset", v.Type)
			}
			return v.LastSeq, nil
		},
	}
}

// The sdk/channeltest kit for websocket channels, at the three depths the
// gateway can reach the plugin: in process, over go-plugin and gRPC, and
// as the built binary.
func TestConformance(t *testing.T) {
	t.Run("in-process", func(t *testing.T) { channeltest.RunSocket(t, harness(assistant.New(assistant.Options{}))) })
	t.Run("grpc", func(t *testing.T) {
		channeltest.RunSocket(t, harness(channeltest.Serve(t, assistant.New(assistant.Options{}))))
	})
	t.Run("binary", func(t *testing.T) { channeltest.RunSocket(t, harness(channeltest.Launch(t, binary))) })
}
