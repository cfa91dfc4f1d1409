package app

import "github.com/switchboard-gw/switchboard/gateway/httpapi"

// routes collects the HTTP APIs beyond health, metrics and channel ingress.
// Each API wires its handlers in its own file of this package.
func (a *App) routes() []httpapi.Route {
	var rs []httpapi.Route
	rs = append(rs, a.csmlRoutes()...)
	rs = append(rs, a.audienceRoutes()...)
	rs = append(rs, a.Webchat.Routes()...)
	rs = append(rs, a.adminRoutes()...)
	return rs
}
