// Package e2e holds end-to-end tests: a real gateway (package app) on a real
// store, real plugin binaries launched through go-plugin, and local servers
// standing in for bot developers' endpoints and chat platforms.
package e2e
