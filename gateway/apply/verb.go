package apply

import (
	"context"
	"errors"
	"reflect"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Verbs apply prints for each object.
const (
	verbCreated   = "created"
	verbUpdated   = "updated"
	verbUnchanged = "unchanged"
)

// change is what writing an object did, from its state read before and
// after the write (times left out): an operator re-applying a file sees
// which objects it actually changed.
func change[T any](existed bool, before, after T) string {
	switch {
	case !existed:
		return verbCreated
	case reflect.DeepEqual(before, after):
		return verbUnchanged
	}
	return verbUpdated
}

// read runs get and reports whether the object exists; other errors are
// returned.
func read[T any](get func() (T, error)) (T, bool, error) {
	v, err := get()
	if errors.Is(err, store.ErrNotFound) {
		return v, false, nil
	}
	return v, err == nil, err
}

// The states compared, without the times every write moves.

func botState(ctx context.Context, tx store.Store, ws, name string) (store.Bot, bool, error) {
	b, ok, err := read(func() (store.Bot, error) { return tx.GetBotByName(ctx, ws, name) })
	b.CreatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	return b, ok, err
}

type channelState struct {
	ch      store.Channel
	secrets map[string]string
}

func readChannel(ctx context.Context, tx store.Store, id string) (channelState, bool, error) {
	ch, ok, err := read(func() (store.Channel, error) { return tx.GetChannel(ctx, id) })
	if !ok || err != nil {
		return channelState{}, ok, err
	}
	ch.CreatedAt, ch.UpdatedAt = time.Time{}, time.Time{}
	secrets, err := tx.GetChannelSecrets(ctx, id)
	return channelState{ch, secrets}, true, err
}

type personState struct {
	p          store.Person
	identities []store.Identity
}

func readPerson(ctx context.Context, tx store.Store, ws, id string) (personState, bool, error) {
	p, ok, err := read(func() (store.Person, error) { return tx.GetPerson(ctx, ws, id) })
	if !ok || err != nil {
		return personState{}, ok, err
	}
	p.CreatedAt, p.UpdatedAt = time.Time{}, time.Time{}
	ids, err := tx.ListIdentities(ctx, ws, id)
	return personState{p, ids}, true, err
}

type segmentState struct {
	sg      store.Segment
	members int64
}

func readSegment(ctx context.Context, tx store.Store, ws, name string) (segmentState, bool, error) {
	sg, ok, err := read(func() (store.Segment, error) { return tx.GetSegmentByName(ctx, ws, name) })
	if !ok || err != nil {
		return segmentState{}, ok, err
	}
	sg.CreatedAt, sg.UpdatedAt = time.Time{}, time.Time{}
	var n int64
	if sg.Filter == nil { // manual: its members are what apply adds
		n, err = tx.CountRecipients(ctx, ws, &store.Filter{Segment: &store.SegmentRef{ID: sg.ID}})
	}
	return segmentState{sg, n}, true, err
}

func readBroadcast(ctx context.Context, tx store.Store, ws, name string) (store.Broadcast, bool, error) {
	b, ok, err := read(func() (store.Broadcast, error) { return tx.GetBroadcastByName(ctx, ws, name) })
	b.UpdatedAt = time.Time{} // CreatedAt is kept: an update writes it back
	return b, ok, err
}
