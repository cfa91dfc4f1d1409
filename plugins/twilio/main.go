// Command twilio is the Twilio SMS channel plugin. The gateway starts it and
// talks to it over the plugin protocol; see package twiliochannel for the
// behaviour and plugins/twilio/README.md for the configuration.
package main

import (
	"github.com/switchboard-gw/switchboard/plugins/twilio/twiliochannel"
	"github.com/switchboard-gw/switchboard/sdk"
)

func main() { sdk.Serve(twiliochannel.New(nil)) }
