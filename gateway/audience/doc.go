// Package audience implements group-triggered broadcasts, compatible with
// Customer.io's API-triggered broadcasts: people and their events (Track
// API), segments, broadcasts with their review, triggers with their limits,
// and the fan-out that turns one trigger into a delivery per person and
// action.
//
// The fan-out never holds an audience in memory. A trigger job streams
// recipients from the store a batch at a time (filters and segments are
// compiled to SQL by the store, data files are read line by line), renders
// each person's messages, writes the batch's deliveries, and commits its
// progress (a cursor) with a compare-and-set on the trigger's step count.
// A job stops after a time budget well inside the queue's lease and
// enqueues its continuation, so no job outlives its lease. Every delivery's
// idempotency key is derived from (trigger, action, person): after a crash,
// the batch in flight is written again and its existing deliveries are
// skipped, so nobody is messaged twice and nobody is lost.
package audience
