// Command telegram is the Telegram channel plugin. The gateway starts it and talks to
// it over the plugin protocol; see package telegramchannel for the behaviour and
// plugins/telegram/README.md for the configuration.
package main

import (
	"github.com/switchboard-gw/switchboard/plugins/telegram/telegramchannel"
	"github.com/switchboard-gw/switchboard/sdk"
)

func main() { sdk.Serve(telegramchannel.New(nil)) }
