package cli

import (
	"context"
	"fmt"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// findChannel resolves a channel by id or by name, within one workspace
// or, with workspace "", across all of them (ids are global; a name must
// then be unambiguous).
func findChannel(ctx context.Context, st store.Tenancy, workspace, idOrName string) (store.Channel, error) {
	chs, err := st.ListChannels(ctx, workspace)
	if err != nil {
		return store.Channel{}, fmt.Errorf("list channels: %w", err)
	}
	var byName []store.Channel
	for _, ch := range chs {
		if ch.ID == idOrName {
			return ch, nil
		}
		if ch.Name == idOrName {
			byName = append(byName, ch)
		}
	}
	switch len(byName) {
	case 1:
		return byName[0], nil
	case 0:
		return store.Channel{}, fmt.Errorf("no channel %q", idOrName)
	default:
		return store.Channel{}, fmt.Errorf("channel name %q is used in several workspaces; give the channel id", idOrName)
	}
}
