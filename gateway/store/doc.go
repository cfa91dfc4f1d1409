// Package store defines Switchboard's persistent state: the domain records
// (workspaces, bots, channels, keys, people, conversations, messages,
// deliveries, jobs) and the Store interface the rest of the gateway uses.
//
// Two implementations live beneath it and pass the same conformance suite
// (package storetest): SQLite, the embedded default, and PostgreSQL, the
// scale-out store. Open picks one from a URL (sqlite://PATH or postgres://…).
//
// Errors: a missing record is ErrNotFound, a uniqueness clash is ErrConflict,
// both wrapped with context; callers branch with errors.Is.
package store
