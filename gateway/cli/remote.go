package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/gateway/adminapi"
	"github.com/switchboard-gw/switchboard/gateway/auth"
	"github.com/switchboard-gw/switchboard/gateway/bot"
	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

// Environment variables of remote mode.
const (
	EnvURL      = "SWITCHBOARD_URL"
	EnvAdminKey = "SWITCHBOARD_ADMIN_KEY"
)

// session is what a command acts through: the admin API of a running
// gateway (--url), or an adminapi.Service on the configured database.
// Either way it is the same Admin, so a command is written once.
type session struct {
	adminapi.Admin
	// remote is true with --url; st and cfg are then nil.
	remote bool
	st     *sqlstore.Store
	cfg    *config.Config
	close  func()
}

// remoteURL is --url or $SWITCHBOARD_URL.
func (g *globals) remoteURL() string {
	if g.url != "" {
		return g.url
	}
	return os.Getenv(EnvURL)
}

// open starts a session: remote when a URL is given (the database and the
// config are then never read), local otherwise.
func (g *globals) open(cmd *cobra.Command) (*session, error) {
	if u := g.remoteURL(); u != "" {
		key := g.key
		if key == "" {
			key = os.Getenv(EnvAdminKey)
		}
		if key == "" {
			return nil, fmt.Errorf("--url %s needs an admin key: give --key or set %s (keys create --admin, or --operator)", u, EnvAdminKey)
		}
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("--url %q: want http(s)://HOST[:PORT]", u)
		}
		c := &adminapi.Client{BaseURL: u, Key: key, HTTP: &http.Client{Timeout: time.Minute}}
		return &session{Admin: c, remote: true, close: func() {}}, nil
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	st, err := g.openStore(cmd.Context(), cfg)
	if err != nil {
		return nil, err
	}
	svc := adminapi.NewService(adminapi.Options{Store: st, Audience: audienceService(st, cfg), Bots: bot.CompileNode})
	return &session{Admin: svc, st: st, cfg: cfg, close: func() { st.Close() }}, nil
}

// withSession runs fn in a session.
func (g *globals) withSession(cmd *cobra.Command, fn func(s *session) error) error {
	s, err := g.open(cmd)
	if err != nil {
		return err
	}
	defer s.close()
	return fn(s)
}

// workspace is the workspace a command acts in: --workspace, which the
// database needs; remotely an admin key's own workspace is the default
// (an operator key needs --workspace).
func (s *session) workspace(flag string) (string, error) {
	if flag == "" && !s.remote {
		return "", errors.New("--workspace is required (or use --url with an admin key of the workspace)")
	}
	if flag == "" {
		if c, ok := s.Admin.(*adminapi.Client); ok && strings.HasPrefix(c.Key, auth.OperatorPrefix) {
			return "", errors.New("--workspace is required with an operator key")
		}
	}
	return flag, nil
}

// workspaceFlag adds --workspace to cmd.
func workspaceFlag(cmd *cobra.Command) *string {
	var ws string
	cmd.Flags().StringVar(&ws, "workspace", "", "workspace id (remotely, an admin key's own by default)")
	return &ws
}

// allPages collects every page of a list.
func allPages[T any](list func(o adminapi.ListOptions) (adminapi.Page[T], error)) ([]T, error) {
	var out []T
	o := adminapi.ListOptions{Limit: 500}
	for {
		p, err := list(o)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Data...)
		if p.Next == "" {
			return out, nil
		}
		o.Cursor = p.Next
	}
}

// outputFlag adds -o/--output (table or json) to cmd.
func outputFlag(cmd *cobra.Command) *string {
	var o string
	cmd.Flags().StringVarP(&o, "output", "o", "table", "output format: table or json")
	return &o
}

func checkOutput(o string) error {
	if o != "table" && o != "json" {
		return fmt.Errorf("--output %q: want table or json", o)
	}
	return nil
}

// printOut writes v as indented JSON with -o json, or runs table.
func printOut(w io.Writer, output string, v any, table func() error) error {
	if output == "json" {
		return writeJSON(w, v)
	}
	return table()
}

func timeOr(t *time.Time, none string) string {
	if t == nil || t.IsZero() {
		return none
	}
	return t.Format(time.RFC3339)
}

// databaseOnly refuses an explicit --url for a command the admin API does
// not offer, saying what to do instead (hint), rather than quietly open
// the database. $SWITCHBOARD_URL alone does not refuse: it is set for the
// commands that go remote.
func (g *globals) databaseOnly(cmd *cobra.Command, hint string) error {
	if g.url == "" {
		return nil
	}
	msg := fmt.Sprintf("%s works on the database only; drop --url", cmd.CommandPath())
	if hint != "" {
		msg += " (" + hint + ")"
	}
	return errors.New(msg)
}

// withStore runs fn on the configured store, for commands that only make
// sense on the database (secrets, migrate).
func (g *globals) withStore(cmd *cobra.Command, fn func(st *sqlstore.Store) error) error {
	if err := g.databaseOnly(cmd, ""); err != nil {
		return err
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	st, err := g.openStore(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

// writeJSONLine writes v as one line of JSON (for streams).
func writeJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
