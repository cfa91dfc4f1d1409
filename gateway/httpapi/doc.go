// Package httpapi is the gateway's HTTP surface: the CSML-compatible bot
// APIs, the Customer.io-compatible App and Track APIs, channel ingress
// (/channels/{id}/…), and operations (/healthz, /readyz, /metrics,
// /openapi.yaml).
//
// Handlers translate HTTP to calls on the domain packages and back; they
// hold no business rules. Every error uses one envelope (see APIError).
package httpapi
