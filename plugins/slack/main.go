// Command slack is the Slack channel plugin. The gateway starts it and talks to
// it over the plugin protocol; see package slackchannel for the behaviour and
// plugins/slack/README.md for the configuration.
package main

import (
	"github.com/switchboard-gw/switchboard/plugins/slack/slackchannel"
	"github.com/switchboard-gw/switchboard/sdk"
)

func main() { sdk.Serve(slackchannel.New(nil)) }
