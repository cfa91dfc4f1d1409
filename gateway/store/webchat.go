package store

import (
	"context"
	"strconv"
	"time"
)

// The reasons of a web chat delivery whose message is stored in the web chat
// outbox but no client has acknowledged yet. Its status is sent (handed to
// the outbox) with one of them until a client's ack makes it delivered: no
// web chat delivery is delivered without an ack.
const (
	// ReasonPendingConnection: the user has no connection; the message
	// waits for the next one.
	ReasonPendingConnection = "pending_connection"
	// ReasonAwaitingAck: the user has a connection (on this node or
	// another live one), which the message is written to.
	ReasonAwaitingAck = "awaiting_ack"
)

// ReasonExpired is the reason of a web chat delivery whose message no client
// acknowledged within the outbox's retention: the message is deleted and the
// delivery failed.
const ReasonExpired = "expired"

// WebchatMessage is one outbound web chat message: the frame the channel's
// plugin rendered for it, under a sequence number that increases per
// (ChannelID, UserID).
type WebchatMessage struct {
	ChannelID string
	UserID    string
	Seq       int64
	// IdempotencyKey is the key of the delivery the message carries.
	IdempotencyKey string
	Frame          []byte
	CreatedAt      time.Time
}

// WebchatAppend is a message to append. Offline says its user has no
// connection, so its delivery waits for the next one
// (ReasonPendingConnection, else ReasonAwaitingAck).
type WebchatAppend struct {
	WebchatMessage
	Offline bool
}

// WebchatAck says a client of UserID has every message up to Seq.
type WebchatAck struct {
	ChannelID string
	UserID    string
	Seq       int64
}

// Webchat is the web chat outbox. Messages are appended when the delivery
// pipeline hands a web chat delivery over, replayed to every connection of
// the user after the sequence number it has, and acknowledged by clients.
type Webchat interface {
	// WebchatSeqs returns the last sequence number given out to each of a
	// channel's users (absent: none yet).
	WebchatSeqs(ctx context.Context, channelID string, userIDs []string) (map[string]int64, error)
	// WebchatByKeys returns the stored messages carrying these delivery
	// idempotency keys.
	WebchatByKeys(ctx context.Context, keys []string) ([]WebchatMessage, error)
	// AppendWebchat stores messages and, in the same transaction, marks
	// their pending deliveries (by idempotency key) sent, with reason
	// ReasonPendingConnection for offline ones and ReasonAwaitingAck for
	// the others. It reports per message
	// whether it was stored: one whose sequence number or idempotency key
	// is taken already is skipped, and so are the user's later messages in
	// msgs, which must not overtake it.
	AppendWebchat(ctx context.Context, msgs []WebchatAppend, at time.Time) ([]bool, error)
	// ListWebchat returns a user's messages after afterSeq, oldest first,
	// at most limit.
	ListWebchat(ctx context.Context, channelID, userID string, afterSeq int64, limit int) ([]WebchatMessage, error)
	// AckWebchat records acknowledgements in one transaction: the
	// deliveries of the newly acknowledged messages become delivered, and
	// each user's acknowledged messages beyond the newest keep are deleted.
	// An ack beyond the last sequence number given out counts up to it.
	AckWebchat(ctx context.Context, acks []WebchatAck, keep int, at time.Time) error
	// MarkWebchatWaiting gives the sent, unacknowledged deliveries of a
	// user the reason ReasonPendingConnection instead of
	// ReasonAwaitingAck: the user's last connection closed.
	MarkWebchatWaiting(ctx context.Context, channelID, userID string, at time.Time) error
	// ExpireWebchat deletes up to limit messages created before before,
	// oldest first, and fails the deliveries of the unacknowledged ones
	// with ReasonExpired. It returns how many messages it deleted.
	ExpireWebchat(ctx context.Context, before time.Time, limit int, at time.Time) (int, error)

	WebchatNodes
}

// WebchatPresence says whether a user has a connection on a node.
type WebchatPresence struct {
	ChannelID string
	UserID    string
	Online    bool
}

// WebchatNodes is web chat presence across the gateway nodes sharing a
// store: each node holds a lease it renews, and files under it the users it
// has connections of. A node whose lease ran out (it stopped or died) counts
// no more, whatever rows it left.
type WebchatNodes interface {
	// RenewWebchatNode extends (or creates) a node's lease until until. It
	// reports whether the node was known: false for a new node, or one
	// forgotten after its lease ran out, whose presence must be filed
	// again.
	RenewWebchatNode(ctx context.Context, node string, until time.Time) (known bool, err error)
	// ForgetWebchatNodes deletes the nodes whose lease ran out before
	// before, with their presence, and re-evaluates the messages they were
	// to write, in one transaction: the unacknowledged deliveries of their
	// users who have no connection on a node whose lease runs past before
	// become ReasonPendingConnection (at is the update time); the users who
	// do are returned, each with the last sequence number given out, so
	// that the nodes holding them write what they lack.
	ForgetWebchatNodes(ctx context.Context, before, at time.Time) (WebchatForgotten, error)
	// SetWebchatPresence files (Online) or removes users under a node.
	SetWebchatPresence(ctx context.Context, node string, ps []WebchatPresence) error
	// WebchatOnline returns which of a channel's users have a connection
	// on a node other than exceptNode whose lease runs past now.
	WebchatOnline(ctx context.Context, channelID string, userIDs []string, exceptNode string, now time.Time) (map[string]bool, error)
}

// WebchatForgotten is what ForgetWebchatNodes did.
type WebchatForgotten struct {
	// Nodes are the forgotten nodes.
	Nodes []string
	// Waiting counts the deliveries that became ReasonPendingConnection.
	Waiting int
	// Elsewhere are the forgotten nodes' users still connected to a live
	// node, with their last sequence number: wake them.
	Elsewhere []WebchatWake
}

// WebchatWake says a user's message with sequence number Seq is stored: a
// node holding connections of the user writes it to them from the outbox.
type WebchatWake struct {
	ChannelID string
	UserID    string
	Seq       int64
}

// WebchatProviderID is the provider id of a web chat delivery: "seq:" and
// its message's sequence number, unique per (channel, user).
func WebchatProviderID(seq int64) string { return "seq:" + strconv.FormatInt(seq, 10) }
