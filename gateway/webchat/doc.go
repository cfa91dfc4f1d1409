// Package webchat is the gateway side of web chat: it holds the websockets of
// channels whose plugin speaks a websocket protocol (sdk.SocketChannel, the
// Assistant), so a plugin restart drops no user, and it keeps web chat's
// state while the plugin owns the protocol.
//
//   - Connections: GET /channels/{channel_id}/ws, checked against the
//     channel's allowed_origins (the gateway's own pages are always
//     allowed). One reader and one writer goroutine per connection; ping/pong deadlines; a read limit (close
//     1009); a per-connection frame rate (a flood is throttled, then closed
//     with 1008); a bounded send queue (a slow consumer is closed with 1008
//     and resumes on reconnect). Every client frame goes to the plugin's
//     HandleFrame, waiting out a plugin restart.
//   - Sessions and presence: a frame that starts a session registers the
//     connection under (channel, user); Connected tells whether a user has a
//     connection on this node. A user may have several (tabs), on several
//     nodes.
//   - Outbox: Plugins wraps the delivery pipeline's plugin lookup so that a
//     web chat delivery, instead of going to the plugin's Send, is rendered
//     by RenderOutbound under the user's next sequence number, stored with
//     its frame (store.Webchat) and handed to every connection of the user
//     at once. The delivery is then sent, with reason pending_connection
//     while the user has no connection; the client's cumulative ack makes
//     it delivered.
//   - Resume: a session starts after the last sequence number its client
//     saw; the writer replays every stored message after it before anything
//     newer, and fills any gap from the store, so each connection gets every
//     message exactly once and in order.
//   - Retention: messages older than Limits.Retention are deleted; the
//     deliveries of those never acknowledged fail with reason expired. A
//     resuming client gets the next stored message: sequence numbers may
//     skip values.
//   - Widget: GET /channels/{channel_id}/ serves a demo page and
//     /channels/{channel_id}/widget.js the embeddable widget, both embedded
//     in the binary.
//
// Several nodes (Options.Wakeups, PostgreSQL): each node holds a lease and
// files its users' presence in the store, so a delivery on any node knows
// whether the user is connected anywhere; after storing messages a node
// wakes the others, and a node holding connections of a woken user has them
// read the new messages from the outbox. Listening again after a lost
// connection, a node fetches whatever its connections lack. On one node
// (SQLite) all of this stays in memory.
package webchat
