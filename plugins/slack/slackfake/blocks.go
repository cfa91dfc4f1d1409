package slackfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Block Kit limits the fake enforces, as Slack documents them.
const (
	maxBlocks         = 50
	maxActionElements = 25
	maxSectionText    = 3000
	maxButtonText     = 75
	maxButtonValue    = 2000
	maxActionID       = 255
)

type textObject struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type element struct {
	Type     string      `json:"type"`
	ActionID string      `json:"action_id"`
	Text     *textObject `json:"text"`
	Value    string      `json:"value"`
	URL      string      `json:"url"`
	ImageURL string      `json:"image_url"`
	AltText  string      `json:"alt_text"`
}

type block struct {
	Type      string      `json:"type"`
	BlockID   string      `json:"block_id"`
	Text      *textObject `json:"text"`
	Accessory *element    `json:"accessory"`
	Elements  []element   `json:"elements"`
	ImageURL  string      `json:"image_url"`
	AltText   string      `json:"alt_text"`
}

// ValidateBlocks refuses what Slack answers with invalid_blocks: more than
// 50 blocks, section text over 3,000 characters, actions blocks over 25
// elements, buttons with a missing or over-long label, value or action_id,
// images without alt text, unknown block types.
func ValidateBlocks(raw string) error {
	var bs []block
	if err := json.Unmarshal([]byte(raw), &bs); err != nil {
		return fmt.Errorf("blocks are not a JSON array: %w", err)
	}
	if len(bs) == 0 || len(bs) > maxBlocks {
		return fmt.Errorf("%d blocks", len(bs))
	}
	for i, b := range bs {
		// action_id must be unique within its block.
		if err := validateBlock(b, map[string]bool{}); err != nil {
			return fmt.Errorf("block %d: %w", i, err)
		}
	}
	return nil
}

func validateBlock(b block, actionIDs map[string]bool) error {
	switch b.Type {
	case "section":
		if b.Text == nil || b.Text.Text == "" || utf8.RuneCountInString(b.Text.Text) > maxSectionText {
			return errors.New("section text missing or too long")
		}
		if b.Accessory != nil {
			return validateElement(*b.Accessory, actionIDs)
		}
	case "actions":
		if len(b.Elements) == 0 || len(b.Elements) > maxActionElements {
			return fmt.Errorf("%d elements", len(b.Elements))
		}
		for _, e := range b.Elements {
			if err := validateElement(e, actionIDs); err != nil {
				return err
			}
		}
	case "image":
		if b.ImageURL == "" || b.AltText == "" {
			return errors.New("image without url or alt_text")
		}
	case "divider", "context", "header":
	default:
		return fmt.Errorf("unknown block type %q", b.Type)
	}
	return nil
}

func validateElement(e element, actionIDs map[string]bool) error {
	switch e.Type {
	case "button":
		switch {
		case e.Text == nil || e.Text.Type != "plain_text" || e.Text.Text == "":
			return errors.New("button text must be plain_text")
		case utf8.RuneCountInString(e.Text.Text) > maxButtonText:
			return errors.New("button text too long")
		case len(e.Value) > maxButtonValue:
			return errors.New("button value too long")
		case e.ActionID == "" || len(e.ActionID) > maxActionID || actionIDs[e.ActionID]:
			return fmt.Errorf("action_id %q missing, too long or repeated", e.ActionID)
		}
		actionIDs[e.ActionID] = true
	case "image":
		if e.ImageURL == "" || e.AltText == "" {
			return errors.New("image element without url or alt_text")
		}
	default:
		return fmt.Errorf("unsupported element %q", e.Type)
	}
	return nil
}
