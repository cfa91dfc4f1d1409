package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func newDev(g *globals) *cobra.Command {
	dev := &cobra.Command{Use: "dev", Short: "Local development helpers"}
	dev.AddCommand(newDevSink(g), newDevSend(g))
	return dev
}

func newDevSink(g *globals) *cobra.Command {
	var listen, secret string
	cmd := &cobra.Command{
		Use:   "sink",
		Short: "Run a local HTTP endpoint that prints what a webhook channel sends",
		Long: `Run a local HTTP endpoint that prints every request a webhook channel sends
it, checking the Standard Webhooks signature when --secret is given (the
channel's outbound signing secret).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var wh *standardwebhooks.Webhook
			if secret != "" {
				var err error
				if wh, err = standardwebhooks.NewWebhook(secret); err != nil {
					return fmt.Errorf("--secret: %w", err)
				}
			}
			out := cmd.OutOrStdout()
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				verdict := "signature not checked"
				if wh != nil {
					if err := wh.Verify(body, r.Header); err != nil {
						fmt.Fprintf(out, "%s %s REFUSED (%v)\n", time.Now().Format(time.TimeOnly), r.URL.Path, err)
						http.Error(w, "bad signature", http.StatusUnauthorized)
						return
					}
					verdict = "signature ok"
				}
				fmt.Fprintf(out, "%s %s webhook-id=%s (%s)\n%s\n", time.Now().Format(time.TimeOnly), r.URL.Path,
					r.Header.Get("webhook-id"), verdict, body)
				w.WriteHeader(http.StatusNoContent)
			})
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stderr, "sink listening on http://"+ln.Addr().String())
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
			go func() {
				<-cmd.Context().Done()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
			}()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9999", "address to listen on")
	cmd.Flags().StringVar(&secret, "secret", "", "whsec_… secret to verify signatures with")
	return cmd
}

func newDevSend(g *globals) *cobra.Command {
	var channel, user, text, button string
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Send a signed user message to a webhook channel, as an outside system would",
		Long: `Send a user message to a webhook channel through the running gateway's public
URL, signed with the channel's inbound signing secret (Standard Webhooks), the
way any outside system talking to a webhook channel would.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (text == "") == (button == "") {
				return errors.New("give exactly one of --text and --button")
			}
			ctx := cmd.Context()
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			st, err := g.openStore(ctx, cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			ch, err := findChannel(ctx, st, "", channel)
			if err != nil {
				return err
			}
			secrets, err := st.GetChannelSecrets(ctx, ch.ID)
			if err != nil || secrets["signing_secret"] == "" {
				return fmt.Errorf("channel %s has no signing_secret to sign with", ch.ID)
			}
			wh, err := standardwebhooks.NewWebhook(secrets["signing_secret"])
			if err != nil {
				return fmt.Errorf("channel %s signing_secret: %w", ch.ID, err)
			}
			body := map[string]any{"user_id": user}
			if text != "" {
				body["text"] = text
			} else {
				body["button"] = map[string]string{"payload": button}
			}
			raw, _ := json.Marshal(body)
			id, now := "msg_"+uuid.NewString(), time.Now()
			sig, err := wh.Sign(id, now, raw)
			if err != nil {
				return err
			}
			url := cfg.PublicURL + "/channels/" + ch.ID + "/webhook"
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("webhook-id", id)
			req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
			req.Header.Set("webhook-signature", sig)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			fmt.Fprintf(cmd.OutOrStdout(), "POST %s → %s %s\n", url, resp.Status, bytes.TrimSpace(answer))
			if resp.StatusCode >= 300 {
				return fmt.Errorf("gateway answered %s", resp.Status)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&channel, "channel", "", "webhook channel id or name (required)")
	f.StringVar(&user, "user", "", "the user's id on the channel (required)")
	f.StringVar(&text, "text", "", "message text")
	f.StringVar(&button, "button", "", "a button payload, as if the user clicked it")
	_ = cmd.MarkFlagRequired("channel")
	_ = cmd.MarkFlagRequired("user")
	return cmd
}
