package bot

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/template"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

// contentTemplate is a message whose strings are template sources, with the
// parsed templates in eachString order.
type contentTemplate struct {
	src  message.Content
	tpls []*template.Template
}

// eachString calls fn with every templated string of c, in a fixed order.
func eachString(c *message.Content, fn func(field string, s *string) error) error {
	buttons := func(prefix string, bs []message.Button) error {
		for i := range bs {
			b := &bs[i]
			for _, f := range []struct {
				name string
				s    *string
			}{{"title", &b.Title}, {"payload", &b.Payload}, {"url", &b.URL}} {
				if err := fn(prefix+" "+f.name, f.s); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := fn("text", &c.Text); err != nil {
		return err
	}
	if err := buttons("button", c.Buttons); err != nil {
		return err
	}
	if m := c.Media; m != nil {
		if err := fn("media url", &m.URL); err != nil {
			return err
		}
		if err := fn("media name", &m.Name); err != nil {
			return err
		}
	}
	for i := range c.Cards {
		card := &c.Cards[i]
		for _, f := range []struct {
			name string
			s    *string
		}{{"card title", &card.Title}, {"card subtitle", &card.Subtitle}, {"card image_url", &card.ImageURL}} {
			if err := fn(f.name, f.s); err != nil {
				return err
			}
		}
		if err := buttons("card button", card.Buttons); err != nil {
			return err
		}
	}
	return nil
}

// deepCopy returns c with its own slices and media, so that rendering into
// it leaves the compiled source alone.
func deepCopy(c message.Content) message.Content {
	c.Buttons = append([]message.Button(nil), c.Buttons...)
	if c.Media != nil {
		m := *c.Media
		c.Media = &m
	}
	if c.Cards != nil {
		cards := make([]message.Card, len(c.Cards))
		for i, card := range c.Cards {
			card.Buttons = append([]message.Button(nil), card.Buttons...)
			cards[i] = card
		}
		c.Cards = cards
	}
	return c
}

// compileContent validates src (sizes, counts, required fields, as far as
// they can be known before rendering) and parses and validates its
// templates. It reports each problem through report.
func compileContent(eng *template.Engine, src message.Content, report func(format string, a ...any)) *contentTemplate {
	ct := &contentTemplate{src: src}
	// Templated strings are checked once rendered; here a placeholder
	// stands in for them, so that the limits apply to static text only
	// (a long "{{ … }}" title may well render short).
	probe := deepCopy(src)
	_ = eachString(&probe, func(_ string, s *string) error {
		if strings.Contains(*s, "{{") || strings.Contains(*s, "{%") {
			*s = "x"
		}
		return nil
	})
	if err := probe.Validate(); err != nil {
		report("%v", err)
	}
	_ = eachString(&ct.src, func(field string, s *string) error {
		t, err := compileTemplate(eng, *s)
		if err != nil {
			report("%s: %v", field, err)
		}
		ct.tpls = append(ct.tpls, t)
		return nil
	})
	return ct
}

// compileTemplate validates src strictly and returns its parsed form.
func compileTemplate(eng *template.Engine, src string) (*template.Template, error) {
	if err := eng.Validate(src); err != nil {
		return nil, err
	}
	return eng.Parse(src)
}

// render renders every string of the message. A text message that renders
// blank (say "{% if memory.vip %}Welcome back{% endif %}") is not sent:
// ok is false. Any other content that is invalid once rendered is an error.
func (ct *contentTemplate) render(ctx context.Context, v *template.Vars) (c message.Content, ok bool, err error) {
	c = deepCopy(ct.src)
	i := 0
	err = eachString(&c, func(field string, s *string) error {
		t := ct.tpls[i]
		i++
		if *s == "" {
			return nil
		}
		out, err := t.Render(ctx, v)
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		*s = out
		return nil
	})
	if err != nil {
		return message.Content{}, false, err
	}
	if c.Type == message.TypeText && strings.TrimSpace(c.Text) == "" {
		return message.Content{}, false, nil
	}
	if err := c.Validate(); err != nil {
		return message.Content{}, false, err
	}
	return c, true, nil
}

// content maps a say to the message model, strings still being sources.
func (s *Say) content() message.Content {
	c := message.Content{Text: s.Text}
	switch {
	case len(s.Buttons) > 0:
		c.Type, c.Buttons = message.TypeButtons, buttons(s.Buttons)
	case len(s.QuickReplies) > 0:
		c.Type, c.Buttons, c.QuickReplies = message.TypeButtons, buttons(s.QuickReplies), true
	case s.Image != nil:
		c.Type, c.Media = message.TypeImage, s.Image.media()
	case s.File != nil:
		c.Type, c.Media = message.TypeFile, s.File.media()
	case s.Card != nil:
		c.Type, c.Cards = message.TypeCard, []message.Card{s.Card.card()}
	case len(s.Carousel) > 0:
		c.Type = message.TypeCarousel
		for _, card := range s.Carousel {
			c.Cards = append(c.Cards, card.card())
		}
	case s.Typing != 0:
		c.Type, c.DurationMS = message.TypeTyping, int(s.Typing.D()/time.Millisecond)
	default:
		c.Type = message.TypeText
	}
	return c
}

// kinds lists which of the mutually exclusive message kinds s sets.
func (s *Say) kinds() []string {
	var ks []string
	for _, k := range []struct {
		name string
		set  bool
	}{
		{"buttons", len(s.Buttons) > 0}, {"quick_replies", len(s.QuickReplies) > 0},
		{"image", s.Image != nil}, {"file", s.File != nil}, {"card", s.Card != nil},
		{"carousel", len(s.Carousel) > 0}, {"typing", s.Typing != 0},
	} {
		if k.set {
			ks = append(ks, k.name)
		}
	}
	return ks
}

func buttons(bs []Button) []message.Button {
	out := make([]message.Button, len(bs))
	for i, b := range bs {
		out[i] = message.Button{Title: b.Title, Payload: b.Payload, URL: b.URL}
	}
	return out
}

func (m *Media) media() *message.Media {
	return &message.Media{URL: m.URL, Name: m.Name, MimeType: m.MimeType}
}

func (c *Card) card() message.Card {
	return message.Card{Title: c.Title, Subtitle: c.Subtitle, ImageURL: c.ImageURL, Buttons: buttons(c.Buttons)}
}
