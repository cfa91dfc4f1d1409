package telegramchannel

import (
	"strings"

	"github.com/switchboard-gw/switchboard/plugins/internal/chankit"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

const (
	maxText         = 4096 // sendMessage text
	maxCaption      = 1024 // sendPhoto / sendDocument caption
	maxCallbackData = 64   // bytes
)

// call is one Bot API request of a rendered message; chat_id is added when
// it is sent, so a migrated group can be retried with the same plan.
type call struct {
	method string
	params map[string]any
}

// plan renders content as the Bot API calls that show it, in order.
//
//   - text: sendMessage, split at 4,096 characters on line or word boundaries;
//   - buttons: the question with an inline keyboard (one button per row); a
//     URL button is a link button;
//   - image / file: sendPhoto / sendDocument by URL with the text as caption;
//     a caption over 1,024 characters goes as a following text message;
//   - card: a photo (when the card has an image) or a text message with the
//     title and subtitle and the card's keyboard, preceded by the content's
//     text if any;
//   - carousel: Telegram has none, so it is its TextFallback (one message,
//     numbered options answered by number or title, as on SMS);
//   - typing: sendChatAction "typing".
//
// Inline buttons return their payload in callback_data, which holds 1 to 64
// bytes. When any button's payload does not fit, the whole message is
// downgraded instead: its TextFallback, with a one-time reply keyboard of the
// button titles. Tapping one sends the title back as an ordinary message,
// which the gateway maps to the button (message.MatchButtonReply), exactly as
// on text-only channels. Nothing is truncated or hashed, so the plugin stays
// stateless.
func plan(c message.Content) []call {
	if c.Type == message.TypeTyping {
		return []call{{"sendChatAction", map[string]any{"action": "typing"}}}
	}
	if !inlineable(c.AllButtons()) {
		return textCalls(c.TextFallback(), replyKeyboard(c.AllButtons()))
	}
	switch c.Type {
	case message.TypeButtons:
		text := c.Text
		if strings.TrimSpace(text) == "" {
			text = c.TextFallback()
		}
		return textCalls(text, inlineKeyboard(c.Buttons))
	case message.TypeImage:
		return mediaCalls("sendPhoto", "photo", c.Media.URL, c.Text, nil)
	case message.TypeFile:
		return mediaCalls("sendDocument", "document", c.Media.URL, c.Text, nil)
	case message.TypeCard:
		card := c.Cards[0]
		text := card.Title
		if card.Subtitle != "" {
			text += "\n" + card.Subtitle
		}
		calls := textCalls(c.Text, nil)
		if card.ImageURL != "" {
			return append(calls, mediaCalls("sendPhoto", "photo", card.ImageURL, text, inlineKeyboard(card.Buttons))...)
		}
		return append(calls, textCalls(text, inlineKeyboard(card.Buttons))...)
	default: // text, and the carousel Telegram cannot show
		return textCalls(c.TextFallback(), nil)
	}
}

// textCalls sends text in parts; the keyboard goes with the last part so it
// sits under the end of the message.
func textCalls(text string, markup any) []call {
	parts := chankit.Split(text, maxText)
	calls := make([]call, len(parts))
	for i, p := range parts {
		calls[i] = call{"sendMessage", map[string]any{"text": p}}
	}
	if markup != nil && len(calls) > 0 {
		calls[len(calls)-1].params["reply_markup"] = markup
	}
	return calls
}

func mediaCalls(method, field, url, caption string, markup any) []call {
	c := call{method, map[string]any{field: url}}
	if chankit.Len(caption) > maxCaption {
		return append([]call{c}, textCalls(caption, markup)...)
	}
	if caption != "" {
		c.params["caption"] = caption
	}
	if markup != nil {
		c.params["reply_markup"] = markup
	}
	return []call{c}
}

type inlineButton struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data,omitempty"`
	URL          string `json:"url,omitempty"`
}

type inlineMarkup struct {
	InlineKeyboard [][]inlineButton `json:"inline_keyboard"`
}

type keyButton struct {
	Text string `json:"text"`
}

type replyMarkup struct {
	Keyboard        [][]keyButton `json:"keyboard"`
	OneTimeKeyboard bool          `json:"one_time_keyboard"`
	ResizeKeyboard  bool          `json:"resize_keyboard"`
}

// inlineable reports whether every payload fits callback_data.
func inlineable(buttons []message.Button) bool {
	for _, b := range buttons {
		if b.URL == "" && (b.Payload == "" || len(b.Payload) > maxCallbackData) {
			return false
		}
	}
	return true
}

// inlineKeyboard returns nil (no reply_markup) for no buttons.
func inlineKeyboard(buttons []message.Button) any {
	if len(buttons) == 0 {
		return nil
	}
	m := inlineMarkup{}
	for _, b := range buttons {
		btn := inlineButton{Text: b.Title, CallbackData: b.Payload}
		if b.URL != "" {
			btn = inlineButton{Text: b.Title, URL: b.URL}
		}
		m.InlineKeyboard = append(m.InlineKeyboard, []inlineButton{btn})
	}
	return m
}

// replyKeyboard lists the titles of the buttons that send something back;
// link buttons are already listed with their URL in the fallback text.
func replyKeyboard(buttons []message.Button) any {
	m := replyMarkup{OneTimeKeyboard: true, ResizeKeyboard: true}
	for _, b := range buttons {
		if b.URL == "" {
			m.Keyboard = append(m.Keyboard, []keyButton{{Text: b.Title}})
		}
	}
	if len(m.Keyboard) == 0 {
		return nil
	}
	return m
}
