// Command assistant is the web chat channel plugin. The gateway starts it; run
// by hand it only prints a notice. See package plugins/assistant/assistant and
// README.md for the websocket protocol.
package main

import (
	"github.com/switchboard-gw/switchboard/plugins/assistant/assistant"
	"github.com/switchboard-gw/switchboard/sdk"
)

func main() { sdk.Serve(assistant.New(assistant.Options{})) }
