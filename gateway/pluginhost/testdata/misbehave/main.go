// Command misbehave is a test plugin whose misbehaviour is chosen by the
// name it is installed under (its executable's base name, which is also the
// name it describes itself with):
//
//	good       behaves (its instance "sick" fails health checks)
//	stdout     writes to stdout on every Send (after the handshake)
//	early      writes to stdout before the handshake
//	panic      panics inside Send; HandleHTTP panics in a goroutine (crash)
//	hang       never completes the handshake
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/switchboard-gw/switchboard/sdk"
)

type channel struct{ mode string }

func (c channel) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: c.mode, Version: "0.0.1", ProtocolVersion: sdk.ProtocolVersion}, nil
}

func (c channel) Configure(context.Context, sdk.InstanceConfig) error { return nil }

// CheckHealth reports the instance named "sick" as unhealthy.
func (c channel) CheckHealth(_ context.Context, channelID string) (sdk.Health, error) {
	if channelID == "sick" {
		return sdk.Health{Reason: "token revoked"}, nil
	}
	return sdk.Health{OK: true}, nil
}

func (c channel) HandleHTTP(context.Context, *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
	if c.mode == "panic" {
		go panic("crash outside any call")
		time.Sleep(time.Second) // the panic ends the process meanwhile
	}
	return &sdk.HTTPResponse{Status: http.StatusOK}, nil
}

func (c channel) Send(_ context.Context, batch []sdk.Outbound) ([]sdk.SendResult, error) {
	switch c.mode {
	case "stdout":
		fmt.Println("hello from a plugin that prints")
	case "panic":
		panic("bad message")
	}
	results := make([]sdk.SendResult, len(batch))
	for i, m := range batch {
		results[i].IdempotencyKey = m.IdempotencyKey
	}
	return results, nil
}

func main() {
	mode := filepath.Base(os.Args[0])
	switch mode {
	case "early":
		fmt.Println("starting up!")
	case "hang":
		select {}
	}
	sdk.Serve(channel{mode: mode})
}
