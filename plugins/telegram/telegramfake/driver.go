package telegramfake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/switchboard-gw/switchboard/plugins/internal/fakekit"
)

// Driver plays Telegram's side of a webhook: it builds updates and delivers
// them to a URL with the X-Telegram-Bot-Api-Secret-Token header.
type Driver struct {
	URL         string // the channel's public webhook URL
	SecretToken string
	Client      *http.Client

	seq atomic.Int64
}

// Update is one update as Telegram would deliver it. Delivering the same
// Update again is a redelivery: same update_id.
type Update struct {
	UpdateID int64
	Body     []byte

	secret     string
	overridden bool // secret replaces the driver's; "" then means no header
}

// WithSecret is the same update sent with secret instead of the right token.
func (u Update) WithSecret(secret string) *Update {
	u.secret, u.overridden = secret, true
	return &u
}

// WithoutSecret is the same update sent without the secret header.
func (u Update) WithoutSecret() *Update { return u.WithSecret("") }

// Message builds a text message from a user in their private chat (the
// chat id equals the user id there).
func (d *Driver) Message(chatID int64, text string) *Update {
	id := d.nextID()
	return d.update(id, map[string]any{
		"message": map[string]any{
			"message_id": id, "date": time.Now().Unix(), "text": text,
			"from": map[string]any{"id": chatID, "is_bot": false, "first_name": "Ada", "username": "ada", "language_code": "en"},
			"chat": map[string]any{"id": chatID, "type": "private", "first_name": "Ada"},
		},
	})
}

// CallbackQuery builds the update Telegram sends when the user presses an
// inline button carrying data under a message in the chat. The query id is
// "cq<update_id>".
func (d *Driver) CallbackQuery(chatID int64, data string) *Update {
	id := d.nextID()
	from := map[string]any{"id": chatID, "is_bot": false, "first_name": "Ada"}
	return d.update(id, map[string]any{
		"callback_query": map[string]any{
			"id": fmt.Sprintf("cq%d", id), "from": from, "chat_instance": "-1234", "data": data,
			"message": map[string]any{
				"message_id": 1, "date": time.Now().Unix(), "text": "question",
				"chat": map[string]any{"id": chatID, "type": "private"},
			},
		},
	})
}

// Post delivers u to the driver's URL.
func (d *Driver) Post(ctx context.Context, u *Update) (*fakekit.Response, error) {
	h := http.Header{"Content-Type": {"application/json"}}
	secret := d.SecretToken
	if u.overridden {
		secret = u.secret
	}
	if secret != "" {
		h.Set("X-Telegram-Bot-Api-Secret-Token", secret)
	}
	return fakekit.Post(ctx, d.Client, d.URL, h, u.Body)
}

func (d *Driver) nextID() int64 { return 700_000_000 + d.seq.Add(1) }

func (d *Driver) update(id int64, fields map[string]any) *Update {
	fields["update_id"] = id
	body, _ := json.Marshal(fields)
	return &Update{UpdateID: id, Body: body}
}
