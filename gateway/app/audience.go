package app

import (
	"github.com/switchboard-gw/switchboard/gateway/audience"
	"github.com/switchboard-gw/switchboard/gateway/audience/audienceapi"
	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/httpapi"
	"github.com/switchboard-gw/switchboard/gateway/netguard"
	"github.com/switchboard-gw/switchboard/gateway/template"
)

// audienceRoutes wires group-triggered broadcasts: the fan-out job handler
// and the Customer.io-compatible App and Track APIs.
func (a *App) audienceRoutes() []httpapi.Route {
	c := a.cfg.Audience
	tpl := template.New(template.Options{})
	filter := audience.FilterLimits{MaxDepth: c.MaxFilterDepth, MaxLeaves: c.MaxFilterLeaves, MaxExpandedDepth: c.MaxFilterExpandedDepth}
	engine := audience.NewEngine(a.Store, audience.EngineOptions{
		BatchSize:    c.BatchSize,
		StepBudget:   c.StepBudget,
		FileTimeout:  c.DataFileTimeout,
		MaxFileLines: c.DataFileMaxLines,
		Filter:       filter,
		// A data file URL is the caller's choice; plain http is allowed,
		// internal addresses only when the config says so.
		Net:        netguard.Options{AllowHTTP: true, AllowPrivate: a.cfg.Security.AllowInternalFetch},
		Deliveries: a.Pipeline,
		Jobs:       a.Queue,
		Templates:  tpl,
		Logger:     a.log,
	})
	a.Queue.Handle(audience.JobKind, engine.Run)
	a.Queue.OnGiveUp(audience.JobKind, engine.GiveUp)
	a.Audience = audience.New(audience.Options{
		Store:     a.Store,
		Engine:    engine,
		Bots:      a.Bots,
		Templates: tpl,
		Limits: audience.Limits{MaxDataBytes: c.MaxDataBytes, MaxListItems: c.MaxListItems,
			Filter: filter},
		TriggerInterval: c.TriggerInterval,
		MaxOpenTriggers: c.MaxOpenTriggers,
		Jobs:            a.Queue,
	})
	api := audienceapi.New(audienceapi.Options{
		Service:         a.Audience,
		Store:           a.Store,
		Auth:            &auth.Authenticator{Keys: a.Store, Logger: a.log},
		MaxTriggerBytes: c.MaxTriggerBytes,
		MaxBodyBytes:    a.cfg.API.MaxBodyBytes,
		ReadRateLimit:   c.ReadRateLimit,
		MaxInflight:     c.MaxInflight,
	})
	return api.Routes()
}
