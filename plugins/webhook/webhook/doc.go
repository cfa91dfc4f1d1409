// Package webhook is the generic signed-webhook channel: any system can
// talk to a Switchboard bot by exchanging JSON over HTTP, signed with
// Standard Webhooks (https://www.standardwebhooks.com, v1 = HMAC-SHA256).
//
// # Inbound
//
// The system POSTs to the channel's webhook URL
// (/channels/{channel_id}/webhook) with the headers webhook-id,
// webhook-timestamp and webhook-signature, signed with the channel's
// signing_secret. The body is one of:
//
//	{"user_id": "u-42", "text": "hello"}
//	{"user_id": "u-42", "button": {"payload": "YES", "title": "Yes"}}
//	{"user_id": "u-42", "message": {"type": "image", "media": {"url": "https://…"}}}
//
// with optional "reply_to" (where replies go instead of user_id) and
// "profile" (string map). "message" is a sdk/message Content. Exactly one of
// text, button and message is allowed.
//
// Answers: 204 when accepted; 401 when a signature header is missing, no
// signature matches or the timestamp is more than 5 minutes off (no events
// then); 400 for a malformed body; 404 for an unknown channel; 405 for
// anything but POST. The event ID is the webhook-id, so a sender retrying
// the same delivery is processed once by the gateway.
//
// # Outbound
//
// Each bot message is POSTed to the channel's url as
//
//	{"channel_id": "…", "user_id": "u-42", "reply_to": "", "idempotency_key": "…",
//	 "attempt": 1, "message": {…Content…}, "text": "…TextFallback…"}
//
// signed the same way (with outbound_signing_secret when set, else
// signing_secret) and with webhook-id = the idempotency key, so the receiver
// can drop duplicates across retries. Any 2xx is success. 429 is rate
// limited (Retry-After honoured, 5 s when absent); 408, 5xx, timeouts and
// network errors are transient; 410 and every other status (including 3xx,
// which is not followed) are permanent.
//
// Messages to different recipients in one batch are sent concurrently;
// messages to one recipient go one after the other, in order, and once one
// fails with a retryable error the rest of that recipient's messages are not
// attempted (they fail the same way) so a retry cannot reorder them.
//
// # Configuration
//
//	config:  {"url": "https://example.com/bot", "timeout": "15s"}
//	secrets: {"signing_secret": "whsec_…", "outbound_signing_secret": "whsec_…"}
//
// url is required (http or https); timeout defaults to 15s and must be
// within 1s..60s. Secrets are "whsec_" plus base64 of at least 24 bytes.
package webhook
