package chankit

import (
	"context"

	"github.com/switchboard-gw/switchboard/sdk"
)

// SendFunc sends one message and returns the platform's id for it.
type SendFunc func(ctx context.Context, out sdk.Outbound) (providerID string, err error)

// SendOrdered sends a batch one message at a time, in input order, and
// returns one result per input.
//
// Messages for one destination must arrive in order, so once a message fails
// in a way the gateway will retry (rate limited, transient), the later
// messages of the batch for the same destination are not attempted: they get
// the same error and are retried behind it. A permanent or auth failure does
// not hold the others back, since the failed message will never be sent.
func SendOrdered(ctx context.Context, batch []sdk.Outbound, send SendFunc) []sdk.SendResult {
	results := make([]sdk.SendResult, len(batch))
	held := make(map[string]error)
	for i, out := range batch {
		results[i].IdempotencyKey = out.IdempotencyKey
		dest := out.Recipient + "\x00" + out.ReplyTo
		if err, ok := held[dest]; ok {
			results[i].Err = err
			continue
		}
		if err := ctx.Err(); err != nil {
			results[i].Err = sdk.Transient("canceled", err.Error())
			continue
		}
		id, err := send(ctx, out)
		results[i].ProviderID = id
		results[i].Err = err
		if k := sdk.KindOf(err); err != nil && (k == sdk.KindRateLimited || k == sdk.KindTransient) {
			held[dest] = err
		}
	}
	return results
}
