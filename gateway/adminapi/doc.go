// Package adminapi is the native admin API under /admin/v1/: a
// workspace's keys, bots, channels (with plugin health), resource
// documents (apply), people, conversations, deliveries, triggers and the
// deployment's status, plus workspaces for the instance-wide operator key.
//
// One interface, Admin, has three faces: Service runs it on a store, API
// serves a Service over HTTP (Bearer admin key, the httpapi error
// envelope, opaque cursors), and Client calls a running gateway. The CLI
// uses a Service on the database or, with --url, a Client, so every
// command behaves the same either way.
//
// Tenants never see each other: every read checks that the object is the
// workspace's and answers another workspace's object exactly as a missing
// one (404).
package adminapi
