package app

import (
	"github.com/switchboard-gw/switchboard/gateway/adminapi"
	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/httpapi"
)

// adminRoutes wires the admin API (/admin/v1/) on the store, this node's
// plugin host and the audience service (which audienceRoutes builds
// first).
func (a *App) adminRoutes() []httpapi.Route {
	svc := adminapi.NewService(adminapi.Options{
		Store:    a.Store,
		Audience: a.Audience,
		Bots:     bot.CompileNode,
		Channels: NewChannelValidator(a.Host, a.cfg),
		Node:     a.Node.ID(),
		Plugins:  a.Host.Status,
	})
	return adminapi.NewAPI(adminapi.HTTPOptions{
		Service:      svc,
		Auth:         &auth.Authenticator{Keys: a.Store, Logger: a.log},
		Operators:    a.operators,
		RateLimit:    a.cfg.Admin.RateLimit,
		MaxBodyBytes: a.cfg.API.MaxBodyBytes,
	}).Routes()
}
