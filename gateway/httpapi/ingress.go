package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/sdk"
)

// ChannelLookup finds a channel by id.
type ChannelLookup interface {
	GetChannel(ctx context.Context, id string) (store.Channel, error)
}

// PluginLookup finds the running plugin of a channel type.
type PluginLookup interface {
	Channel(name string) (sdk.Channel, error)
}

// EventSink makes inbound events durable. Accept returns only once the
// events are stored (or found to be duplicates), so acknowledging the
// platform afterwards can never lose one.
type EventSink interface {
	Accept(ctx context.Context, ch store.Channel, events []sdk.Event) error
}

// Ingress hands platform webhooks to the channel's plugin:
// /channels/{channel_id}/webhook and any sub-path below it.
type Ingress struct {
	Channels ChannelLookup
	Plugins  PluginLookup
	Events   EventSink
	// PublicURL is the configured external base URL; the URL given to the
	// plugin is PublicURL + the request URI, because platform signatures
	// (Twilio's) cover the URL the platform called, which a proxy in front
	// of the gateway may have rewritten.
	PublicURL string
	MaxBody   int64
}

func (in *Ingress) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("channel_id")
	ch, err := in.Channels.GetChannel(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !ch.Enabled) {
		WriteErrors(w, Errf(http.StatusNotFound, "channel_not_found", "", "no channel %q", id))
		return
	}
	if err != nil {
		WriteError(w, r, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, in.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			WriteErrors(w, Errf(http.StatusRequestEntityTooLarge, "body_too_large", "", "request body exceeds %d bytes", in.MaxBody))
			return
		}
		WriteErrors(w, Errf(http.StatusBadRequest, "bad_body", "", "the request body could not be read"))
		return
	}
	// The platform (or whoever calls) learns that the channel cannot take
	// the request now and the request id; what went wrong inside a plugin
	// (its errors name configuration and internals) goes to the log.
	plugin, err := in.Plugins.Channel(ch.Type)
	if err != nil {
		// 503 makes the platform retry later, when the plugin is back.
		slog.ErrorContext(r.Context(), "webhook: channel plugin unavailable", "channel_id", ch.ID, "plugin", ch.Type,
			"request_id", RequestID(r.Context()), "err", err)
		w.Header().Set("Retry-After", "5")
		WriteErrors(w, Errf(http.StatusServiceUnavailable, "plugin_down", "",
			"channel %s cannot take requests now; retry later (the gateway log has the details%s)", ch.ID, underRequestID(r)))
		return
	}
	resp, err := plugin.HandleHTTP(r.Context(), &sdk.HTTPRequest{
		ChannelID: ch.ID,
		Method:    r.Method,
		URL:       in.PublicURL + r.URL.RequestURI(),
		Header:    r.Header.Clone(),
		Body:      body,
		Received:  time.Now(),
	})
	if err != nil {
		slog.ErrorContext(r.Context(), "webhook: channel plugin failed", "channel_id", ch.ID, "plugin", ch.Type,
			"request_id", RequestID(r.Context()), "err", err)
		w.Header().Set("Retry-After", "5")
		WriteErrors(w, Errf(http.StatusServiceUnavailable, "plugin_error", "",
			"channel %s could not handle the request; retry later (the gateway log has the details%s)", ch.ID, underRequestID(r)))
		return
	}
	if len(resp.Events) > 0 {
		if err := in.Events.Accept(r.Context(), ch, resp.Events); err != nil {
			// Not stored: refuse so the platform retries instead of
			// believing we have it.
			w.Header().Set("Retry-After", "5")
			WriteError(w, r, err)
			return
		}
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(resp.Body)
}
