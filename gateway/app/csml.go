package app

import (
	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/broadcast"
	"github.com/switchboard-gw/switchboard/gateway/httpapi"
)

// csmlRoutes wires the CSML Studio-compatible APIs: broadcasts (flow
// triggers with per-request results), chat, bot and conversations.
func (a *App) csmlRoutes() []httpapi.Route {
	a.Broadcasts = &broadcast.Service{Store: a.Store, Bots: a.Bots, Queue: a.Queue, Logger: a.log,
		Retention: a.cfg.Retention.FlowTriggers}
	a.Conversations.Observe = a.Broadcasts.Observe
	api := &httpapi.CSML{
		Auth:       &auth.Authenticator{Keys: a.Store, Logger: a.log},
		Store:      a.Store,
		Bots:       a.Bots,
		Broadcasts: a.Broadcasts,
		Chat:       a.Conversations,
		RateLimit:  a.cfg.API.KeyRateLimit,
		MaxBody:    a.cfg.API.MaxBodyBytes,
	}
	return api.Routes()
}
