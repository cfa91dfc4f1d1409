// Package assistant is the web chat channel ("Assistant", after CSML's): end
// users chat with a bot in a browser widget connected by a websocket to
// /channels/{channel_id}/ws.
//
// The gateway holds the websockets, so a restart of this plugin drops nobody,
// and keeps all state: sessions, per-user sequence numbers, the outbox of
// rendered frames and the acknowledgements. This package owns the protocol
// (sdk.SocketChannel): it reads every client frame, issues and checks session
// tokens, and renders every outbound message as a frame.
//
// # Frames
//
// Every frame is a JSON text message with a "type". Client to server:
//
//	{"type":"hello", "token":"…", "last_seq":12, "start":true, "ref":"FLOW", "metadata":{…}, "request_id":"…"}
//	{"type":"message", "request_id":"r-1", "text":"hi"}
//	{"type":"button", "request_id":"r-2", "payload":"yes", "title":"Yes"}
//	{"type":"ack", "seq":14}
//
// Server to client:
//
//	{"type":"welcome", "user_id":"…", "token":"…", "anonymous":true, "expires_at":"…"}
//	{"type":"received", "request_id":"r-1"}
//	{"type":"message", "seq":13, "id":"…", "content":{…}, "text":"…"}
//	{"type":"error", "code":"bad_frame", "message":"…", "request_id":"r-1"}
//
// hello must be the connection's first frame. "message" carries a
// sdk/message Content (text, buttons, image, file, card, carousel, typing)
// and its plain-text fallback. See README.md for the whole protocol, the
// token formats and the widget.
package assistant
