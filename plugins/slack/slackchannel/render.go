package slackchannel

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/switchboard-gw/switchboard/plugins/internal/chankit"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

const (
	// maxText is where Slack truncates a message's text.
	maxText = 40_000
	// maxSectionText is Block Kit's limit for one section's text; longer
	// text is spread over several sections.
	maxSectionText = 3_000
)

// blocks renders c as Block Kit. Plain text needs no blocks (the message's
// text field carries it) and neither does a file, which Slack can only show
// by upload: it goes as its TextFallback link. Everything else becomes:
//
//   - buttons: the question as section(s), then one actions block;
//   - image: the caption as section(s), then an image block;
//   - card and carousel: per card a section (bold title, subtitle, image as
//     accessory) and an actions block, cards separated by dividers (Slack has
//     no carousel).
//
// With at most 16 KiB of text (6 sections), 10 cards (3 blocks each) and 9
// dividers, a message stays under Slack's 50-block limit.
func blocks(c message.Content) []slack.Block {
	switch c.Type {
	case message.TypeButtons:
		return append(sections(c.Text), actions("b", c.Buttons))
	case message.TypeImage:
		alt := c.Text
		if alt == "" {
			alt = c.Media.Name
		}
		if alt == "" {
			alt = "image"
		}
		return append(sections(c.Text), slack.NewImageBlock(c.Media.URL, chankit.Truncate(alt, 2000), "", nil))
	case message.TypeCard, message.TypeCarousel:
		out := sections(c.Text)
		for i, card := range c.Cards {
			if i > 0 {
				out = append(out, slack.NewDividerBlock())
			}
			out = append(out, cardBlocks(i, card)...)
		}
		return out
	default:
		return nil
	}
}

func cardBlocks(i int, card message.Card) []slack.Block {
	text := "*" + escape(card.Title) + "*"
	if card.Subtitle != "" {
		text += "\n" + escape(card.Subtitle)
	}
	var accessory *slack.Accessory
	if card.ImageURL != "" {
		accessory = slack.NewAccessory(slack.NewImageBlockElement(card.ImageURL, card.Title))
	}
	out := []slack.Block{slack.NewSectionBlock(
		slack.NewTextBlockObject(slack.MarkdownType, chankit.Truncate(text, maxSectionText), false, false), nil, accessory)}
	if len(card.Buttons) > 0 {
		out = append(out, actions(fmt.Sprintf("c%d", i), card.Buttons))
	}
	return out
}

// sections spreads text over as many plain-text sections as it needs.
func sections(text string) []slack.Block {
	var out []slack.Block
	for _, part := range chankit.Split(text, maxSectionText) {
		out = append(out, slack.NewSectionBlock(slack.NewTextBlockObject(slack.PlainTextType, part, false, false), nil, nil))
	}
	return out
}

// actions renders buttons (at most 25, as the message model guarantees).
// The payload travels as the button's value and comes back in block_actions;
// a URL button opens its link and sends no value.
func actions(prefix string, buttons []message.Button) *slack.ActionBlock {
	elems := make([]slack.BlockElement, len(buttons))
	for i, b := range buttons {
		label := slack.NewTextBlockObject(slack.PlainTextType, b.Title, false, false)
		btn := slack.NewButtonBlockElement(fmt.Sprintf("sb-%s-%d", prefix, i), b.Payload, label)
		if b.URL != "" {
			btn = btn.WithURL(b.URL)
		}
		elems[i] = btn
	}
	return slack.NewActionBlock("sb-"+prefix, elems...)
}

// escape neutralises the three characters Slack's mrkdwn treats as markup
// (&, <, >), so a bot's text cannot turn into a mention or a link.
var escape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace
