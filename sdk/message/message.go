// Package message is Switchboard's normalized message model, shared by the
// gateway and every channel plugin.
//
// A bot produces Content; each channel renders what it can show natively and
// falls back to plain text (see Content.TextFallback) for the rest, so no
// message is ever silently dropped because a channel lacks a feature.
package message

import (
	"errors"
	"fmt"
	"strings"
)

// Type says what a Content holds.
type Type string

// The content types every channel must either render or downgrade to text.
const (
	TypeText     Type = "text"     // Text
	TypeButtons  Type = "buttons"  // Text (the question) + Buttons
	TypeImage    Type = "image"    // Media (+ Text as caption)
	TypeFile     Type = "file"     // Media (+ Text)
	TypeCard     Type = "card"     // Cards[0]
	TypeCarousel Type = "carousel" // Cards
	TypeTyping   Type = "typing"   // DurationMS
)

// Limits that keep one message within what every supported platform accepts
// after fallback rendering.
const (
	MaxTextBytes     = 16 << 10
	MaxButtons       = 25
	MaxCards         = 10
	MaxButtonTitle   = 75
	MaxButtonPayload = 1024
	MaxTypingMS      = 10_000
)

// Content is one message, inbound or outbound.
type Content struct {
	Type Type `json:"type"`
	// Text is the body of a text message, the question above buttons, or a
	// caption for media.
	Text string `json:"text,omitempty"`
	// QuickReplies marks buttons that disappear once one is chosen (web chat);
	// channels without the notion treat them as ordinary buttons.
	QuickReplies bool     `json:"quick_replies,omitempty"`
	Buttons      []Button `json:"buttons,omitempty"`
	Media        *Media   `json:"media,omitempty"`
	Cards        []Card   `json:"cards,omitempty"`
	DurationMS   int      `json:"duration_ms,omitempty"`
	Payload      string   `json:"payload,omitempty"` // inbound button clicks: the chosen button's payload
	Metadata     Metadata `json:"metadata,omitempty"`
}

// Metadata is free-form, string-keyed data carried beside a message.
type Metadata map[string]string

// Button is a choice offered to the user. A button with a URL opens a link
// instead of sending Payload back.
type Button struct {
	Title   string `json:"title"`
	Payload string `json:"payload,omitempty"`
	URL     string `json:"url,omitempty"`
}

// Media is an image or a file, by reference: bytes never travel through the
// gateway.
type Media struct {
	URL      string `json:"url"`
	Name     string `json:"name,omitempty"`
	MimeType string `json:"mime_type,omitempty"`
}

// Card is a titled block with an optional image and buttons.
type Card struct {
	Title    string   `json:"title"`
	Subtitle string   `json:"subtitle,omitempty"`
	ImageURL string   `json:"image_url,omitempty"`
	Buttons  []Button `json:"buttons,omitempty"`
}

// Text returns a plain text message.
func Text(s string) Content { return Content{Type: TypeText, Text: s} }

// ErrInvalid is wrapped by every validation error of this package.
var ErrInvalid = errors.New("invalid message")

// Validate reports the first problem that would make c unsendable.
func (c Content) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	if len(c.Text) > MaxTextBytes {
		return bad("text is %d bytes, the limit is %d", len(c.Text), MaxTextBytes)
	}
	switch c.Type {
	case TypeText:
		if strings.TrimSpace(c.Text) == "" && c.Payload == "" {
			return bad("text message has no text")
		}
	case TypeButtons:
		if len(c.Buttons) == 0 {
			return bad("buttons message has no buttons")
		}
	case TypeImage, TypeFile:
		if c.Media == nil || c.Media.URL == "" {
			return bad("%s message has no media url", c.Type)
		}
	case TypeCard:
		if len(c.Cards) != 1 {
			return bad("card message needs exactly one card, has %d", len(c.Cards))
		}
	case TypeCarousel:
		if len(c.Cards) == 0 || len(c.Cards) > MaxCards {
			return bad("carousel needs 1 to %d cards, has %d", MaxCards, len(c.Cards))
		}
	case TypeTyping:
		if c.DurationMS < 0 || c.DurationMS > MaxTypingMS {
			return bad("typing duration %d ms is outside 0..%d", c.DurationMS, MaxTypingMS)
		}
	default:
		return bad("unknown type %q", c.Type)
	}
	if err := validateButtons(c.Buttons); err != nil {
		return err
	}
	for i, card := range c.Cards {
		if card.Title == "" {
			return bad("card %d has no title", i)
		}
		if err := validateButtons(card.Buttons); err != nil {
			return fmt.Errorf("card %d: %w", i, err)
		}
	}
	return nil
}

func validateButtons(bs []Button) error {
	if len(bs) > MaxButtons {
		return fmt.Errorf("%w: %d buttons, the limit is %d", ErrInvalid, len(bs), MaxButtons)
	}
	for i, b := range bs {
		switch {
		case b.Title == "":
			return fmt.Errorf("%w: button %d has no title", ErrInvalid, i)
		case len(b.Title) > MaxButtonTitle:
			return fmt.Errorf("%w: button %d title is longer than %d bytes", ErrInvalid, i, MaxButtonTitle)
		case len(b.Payload) > MaxButtonPayload:
			return fmt.Errorf("%w: button %d payload is longer than %d bytes", ErrInvalid, i, MaxButtonPayload)
		}
	}
	return nil
}

// TextFallback renders c as plain text for channels that cannot show it
// natively. The rules are fixed so that users of every text-only channel see
// the same thing:
//
//   - buttons become numbered lines "1. Title" under the text (a URL button
//     shows its URL after the title); a reply of the number selects the
//     button (see MatchButtonReply);
//   - image and file become the caption followed by the URL on its own line;
//   - a card becomes its title, subtitle, image URL and numbered buttons; a
//     carousel is its cards separated by blank lines, with buttons numbered
//     across the whole carousel;
//   - typing has no text form and renders as "".
func (c Content) TextFallback() string {
	var b strings.Builder
	line := func(s string) {
		if s == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s)
	}
	n := 0
	buttons := func(bs []Button) {
		for _, bt := range bs {
			n++
			if bt.URL != "" {
				line(fmt.Sprintf("%d. %s: %s", n, bt.Title, bt.URL))
				continue
			}
			line(fmt.Sprintf("%d. %s", n, bt.Title))
		}
	}
	switch c.Type {
	case TypeTyping:
		return ""
	case TypeImage, TypeFile:
		line(c.Text)
		if c.Media != nil {
			line(c.Media.URL)
		}
	case TypeCard, TypeCarousel:
		line(c.Text)
		for i, card := range c.Cards {
			if i > 0 || b.Len() > 0 {
				b.WriteByte('\n')
			}
			line(card.Title)
			line(card.Subtitle)
			line(card.ImageURL)
			buttons(card.Buttons)
		}
	default:
		line(c.Text)
		buttons(c.Buttons)
	}
	return b.String()
}

// AllButtons returns the buttons of c in fallback numbering order.
func (c Content) AllButtons() []Button {
	all := append([]Button(nil), c.Buttons...)
	for _, card := range c.Cards {
		all = append(all, card.Buttons...)
	}
	return all
}

// MatchButtonReply maps a text reply to one of the buttons offered by prev,
// by its fallback number ("2") or, case-insensitively, by its title. It is
// how text-only channels turn a typed answer back into a button click.
func MatchButtonReply(prev Content, reply string) (Button, bool) {
	reply = strings.TrimSpace(reply)
	all := prev.AllButtons()
	var idx int
	if _, err := fmt.Sscanf(reply, "%d", &idx); err == nil && fmt.Sprint(idx) == reply {
		if idx >= 1 && idx <= len(all) && all[idx-1].URL == "" {
			return all[idx-1], true
		}
		return Button{}, false
	}
	for _, b := range all {
		if b.URL == "" && strings.EqualFold(b.Title, reply) {
			return b, true
		}
	}
	return Button{}, false
}
