package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk"
)

// filePlan is one file validated and ready to write.
type filePlan struct {
	file     File
	bots     []store.Bot
	channels []channelPlan
	people   []personPlan
}

type channelPlan struct {
	ch      store.Channel
	botName string
	secrets map[string]string
}

type personPlan struct {
	p          store.Person
	identities []store.Identity // ChannelID holds the channel's name or id until written
}

// plan validates every file and collects all problems.
func plan(ctx context.Context, files []File, opts Options) ([]filePlan, Problems) {
	var probs Problems
	var plans []filePlan
	seenWS := map[string]string{}
	for _, f := range files {
		bad := func(section string, i int, format string, a ...any) {
			loc := f.Name
			if l := f.line(section, i); l > 0 {
				loc = fmt.Sprintf("%s:%d", f.Name, l)
			}
			probs = append(probs, fmt.Sprintf("%s: %s[%d]: %s", loc, section, i, fmt.Sprintf(format, a...)))
		}
		d := f.Doc
		ws := d.Workspace.ID
		if !idPattern.MatchString(ws) {
			probs = append(probs, fmt.Sprintf("%s: workspace.id %q: must match %s", f.Name, ws, idPattern))
			continue
		}
		if prev, dup := seenWS[ws]; dup {
			probs = append(probs, fmt.Sprintf("%s: workspace %q is also described in %s; describe each workspace in one file", f.Name, ws, prev))
			continue
		}
		seenWS[ws] = f.Name
		p := filePlan{file: f}
		botNames := map[string]bool{}
		for i := range d.Bots {
			name, def, err := opts.Bots(&d.Bots[i])
			if err != nil {
				bad("bots", i, "%v", err)
				continue
			}
			if botNames[name] {
				bad("bots", i, "bot %q is defined twice", name)
				continue
			}
			botNames[name] = true
			p.bots = append(p.bots, store.Bot{WorkspaceID: ws, Name: name, Definition: def})
		}
		chNames := map[string]bool{}
		for i, c := range d.Channels {
			switch {
			case !idPattern.MatchString(c.Name):
				bad("channels", i, "name %q: must match %s", c.Name, idPattern)
				continue
			case chNames[c.Name]:
				bad("channels", i, "channel %q is defined twice", c.Name)
				continue
			case c.ID != "" && !idPattern.MatchString(c.ID):
				bad("channels", i, "id %q: must match %s", c.ID, idPattern)
				continue
			case !typePattern.MatchString(c.Type):
				bad("channels", i, "type %q: must be a plugin name such as webhook, slack, twilio, telegram or assistant", c.Type)
				continue
			case c.Bot == "":
				bad("channels", i, "bot: required")
				continue
			}
			// A bot not in this file may exist from an earlier apply: the
			// transaction checks it.
			chNames[c.Name] = true
			cfg, err := expandConfig(c.Config, opts.LookupEnv)
			if err != nil {
				bad("channels", i, "config: %v", err)
				continue
			}
			secrets := map[string]string{}
			for k, v := range c.Secrets {
				ev, err := expandEnv(v, opts.LookupEnv)
				if err != nil {
					bad("channels", i, "secrets.%s: %v", k, err)
					continue
				}
				secrets[k] = ev
			}
			enabled := c.Enabled == nil || *c.Enabled
			ch := store.Channel{ID: c.ID, WorkspaceID: ws, Name: c.Name, Type: c.Type, Config: cfg, Enabled: enabled}
			if problems := validateChannel(ctx, opts, ch, secrets); len(problems) > 0 {
				for _, pr := range problems {
					bad("channels", i, "%s", pr)
				}
				continue
			}
			p.channels = append(p.channels, channelPlan{ch: ch, botName: c.Bot, secrets: secrets})
		}
		personIDs := map[string]bool{}
		for i, ps := range d.People {
			if ps.ID == "" || len(ps.ID) > 150 {
				bad("people", i, "id: required, at most 150 characters")
				continue
			}
			if personIDs[ps.ID] {
				bad("people", i, "person %q is defined twice", ps.ID)
				continue
			}
			personIDs[ps.ID] = true
			pp := personPlan{p: store.Person{WorkspaceID: ws, ID: ps.ID, Email: strings.ToLower(ps.Email), Attributes: ps.Attributes}}
			for j, id := range ps.Identities {
				if id.Channel == "" || id.Address == "" {
					bad("people", i, "identities[%d]: channel and address are required", j)
					continue
				}
				pp.identities = append(pp.identities, store.Identity{WorkspaceID: ws, PersonID: ps.ID, ChannelID: id.Channel, Address: id.Address})
			}
			p.people = append(p.people, pp)
		}
		plans = append(plans, p)
	}
	return plans, probs
}

// validateChannel asks the channel's plugin about its configuration and
// returns one problem per bad field; a plugin that cannot say is noted in
// the output and the channel is accepted.
func validateChannel(ctx context.Context, opts Options, ch store.Channel, secrets map[string]string) []string {
	if opts.Channels == nil {
		return nil
	}
	err := opts.Channels.ValidateChannel(ctx, ch, secrets)
	var ce *sdk.ConfigError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		var out []string
		for _, f := range slices.Sorted(maps.Keys(ce.Fields)) {
			out = append(out, fmt.Sprintf("the %s plugin refuses the configuration: %s: %s", ch.Type, f, ce.Fields[f]))
		}
		return out
	case errors.Is(err, ErrNotValidated):
		fmt.Fprintf(opts.Out, "channel %s: %v\n", ch.Name, err)
		return nil
	}
	return []string{fmt.Sprintf("checking the configuration with the %s plugin: %v", ch.Type, err)}
}

// expandConfig resolves ${VAR} references in string values and returns the
// config as JSON.
func expandConfig(cfg map[string]any, lookup func(string) (string, bool)) (json.RawMessage, error) {
	var walk func(v any) (any, error)
	walk = func(v any) (any, error) {
		switch t := v.(type) {
		case string:
			return expandEnv(t, lookup)
		case map[string]any:
			for k, e := range t {
				x, err := walk(e)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", k, err)
				}
				t[k] = x
			}
		case []any:
			for i, e := range t {
				x, err := walk(e)
				if err != nil {
					return nil, err
				}
				t[i] = x
			}
		}
		return v, nil
	}
	if cfg == nil {
		cfg = map[string]any{}
	}
	if _, err := walk(cfg); err != nil {
		return nil, err
	}
	return json.Marshal(cfg)
}

// write applies one file's plan inside the transaction.
func (p filePlan) write(ctx context.Context, tx store.Store, opts Options) error {
	ws := p.file.Doc.Workspace
	cur, existed, err := read(func() (store.Workspace, error) { return tx.GetWorkspace(ctx, ws.ID) })
	if err != nil {
		return err
	}
	if err := tx.UpsertWorkspace(ctx, store.Workspace{ID: ws.ID, Name: ws.Name, CreatedAt: opts.Now()}); err != nil {
		return fmt.Errorf("workspace %s: %w", ws.ID, err)
	}
	fmt.Fprintf(opts.Out, "workspace %s: %s\n", ws.ID, change(existed, cur.Name, ws.Name))
	botIDs := map[string]string{}
	for _, b := range p.bots {
		before, existed, err := botState(ctx, tx, b.WorkspaceID, b.Name)
		if err != nil {
			return fmt.Errorf("bot %s: %w", b.Name, err)
		}
		if err := tx.UpsertBot(ctx, &b); err != nil {
			return fmt.Errorf("bot %s: %w", b.Name, err)
		}
		after, _, err := botState(ctx, tx, b.WorkspaceID, b.Name)
		if err != nil {
			return fmt.Errorf("bot %s: %w", b.Name, err)
		}
		botIDs[b.Name] = b.ID
		fmt.Fprintf(opts.Out, "bot %s (id %s): %s\n", b.Name, b.ID, change(existed, before, after))
	}
	channelIDs := map[string]string{}
	existing, err := tx.ListChannels(ctx, ws.ID)
	if err != nil {
		return err
	}
	for _, ch := range existing {
		channelIDs[ch.Name], channelIDs[ch.ID] = ch.ID, ch.ID
	}
	for _, cp := range p.channels {
		ch := cp.ch
		id, ok := botIDs[cp.botName]
		if !ok {
			b, err := tx.GetBotByName(ctx, ws.ID, cp.botName)
			if errors.Is(err, store.ErrNotFound) {
				return Problems{fmt.Sprintf("%s: channel %s: bot %q is neither in this file nor in workspace %s", p.file.Name, ch.Name, cp.botName, ws.ID)}
			}
			if err != nil {
				return err
			}
			id = b.ID
		}
		ch.BotID = id
		var before channelState
		prevID, existed := channelIDs[ch.Name]
		if existed {
			if before, _, err = readChannel(ctx, tx, prevID); err != nil {
				return fmt.Errorf("channel %s: %w", ch.Name, err)
			}
		}
		if prev, ok := channelIDs[ch.Name]; ok && ch.ID == "" {
			ch.ID = prev
		} else if ok && ch.ID != prev {
			return Problems{fmt.Sprintf("%s: channel %s: has id %s already; ids cannot change", p.file.Name, ch.Name, prev)}
		}
		if err := tx.UpsertChannel(ctx, &ch); err != nil {
			return fmt.Errorf("channel %s: %w", ch.Name, err)
		}
		if len(cp.secrets) > 0 {
			if err := tx.SetChannelSecrets(ctx, ch.ID, cp.secrets); err != nil {
				return fmt.Errorf("channel %s secrets: %w", ch.Name, err)
			}
		}
		after, _, err := readChannel(ctx, tx, ch.ID)
		if err != nil {
			return fmt.Errorf("channel %s: %w", ch.Name, err)
		}
		channelIDs[ch.Name], channelIDs[ch.ID] = ch.ID, ch.ID
		fmt.Fprintf(opts.Out, "channel %s (id %s, type %s): %s; webhook path /channels/%s/webhook\n", ch.Name, ch.ID, ch.Type,
			change(existed, before, after), ch.ID)
	}
	for _, pp := range p.people {
		before, existed, err := readPerson(ctx, tx, ws.ID, pp.p.ID)
		if err != nil {
			return fmt.Errorf("person %s: %w", pp.p.ID, err)
		}
		if _, err := tx.UpsertPerson(ctx, pp.p); err != nil {
			return fmt.Errorf("person %s: %w", pp.p.ID, err)
		}
		for _, id := range pp.identities {
			chID, ok := channelIDs[id.ChannelID]
			if !ok {
				return Problems{fmt.Sprintf("%s: person %s: no channel %q in workspace %s", p.file.Name, pp.p.ID, id.ChannelID, ws.ID)}
			}
			id.ChannelID = chID
			if err := tx.LinkIdentity(ctx, id); err != nil {
				return fmt.Errorf("person %s identity: %w", pp.p.ID, err)
			}
		}
		after, _, err := readPerson(ctx, tx, ws.ID, pp.p.ID)
		if err != nil {
			return fmt.Errorf("person %s: %w", pp.p.ID, err)
		}
		fmt.Fprintf(opts.Out, "person %s: %s\n", pp.p.ID, change(existed, before, after))
	}
	return nil
}
