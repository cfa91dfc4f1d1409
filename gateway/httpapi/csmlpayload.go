package httpapi

import "github.com/switchboard-gw/switchboard/sdk/message"

// csmlPayload is a message in CSML's {content_type, content} shape.
type csmlPayload struct {
	ContentType string         `json:"content_type"`
	Content     map[string]any `json:"content"`
}

func csmlButtons(bs []message.Button) []map[string]any {
	out := make([]map[string]any, 0, len(bs))
	for _, b := range bs {
		c := map[string]any{"title": b.Title}
		if b.URL != "" {
			c["url"] = b.URL
		} else {
			c["payload"] = b.Payload
		}
		out = append(out, map[string]any{"content_type": "button", "content": c})
	}
	return out
}

func csmlCard(c message.Card) map[string]any {
	m := map[string]any{"title": c.Title, "buttons": csmlButtons(c.Buttons)}
	if c.Subtitle != "" {
		m["subtitle"] = c.Subtitle
	}
	if c.ImageURL != "" {
		m["image_url"] = c.ImageURL
	}
	return m
}

// toCSMLPayload renders normalized content the way CSML's APIs show
// messages: text, question (with buttons), image, file, card, carousel,
// typing; an inbound button click is a payload.
func toCSMLPayload(c message.Content) csmlPayload {
	switch c.Type {
	case message.TypeButtons:
		return csmlPayload{"question", map[string]any{"title": c.Text, "buttons": csmlButtons(c.Buttons)}}
	case message.TypeImage, message.TypeFile:
		m := map[string]any{}
		if c.Media != nil {
			m["url"] = c.Media.URL
		}
		if c.Text != "" {
			m["text"] = c.Text
		}
		return csmlPayload{string(c.Type), m}
	case message.TypeCard:
		if len(c.Cards) == 1 {
			return csmlPayload{"card", csmlCard(c.Cards[0])}
		}
	case message.TypeCarousel:
		cards := make([]map[string]any, len(c.Cards))
		for i, card := range c.Cards {
			cards[i] = csmlCard(card)
		}
		return csmlPayload{"carousel", map[string]any{"cards": cards}}
	case message.TypeTyping:
		return csmlPayload{"typing", map[string]any{"duration": c.DurationMS}}
	}
	if c.Payload != "" && c.Text == "" {
		return csmlPayload{"payload", map[string]any{"payload": c.Payload}}
	}
	return csmlPayload{"text", map[string]any{"text": c.Text}}
}
