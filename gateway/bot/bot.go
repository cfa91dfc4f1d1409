// Package bot is the bot document: a bot's flows and their steps, as written
// in YAML by bot developers (see docs/BOTS.md), stored as JSON, and compiled
// into a form the conversation engine runs.
//
// The life of a bot:
//
//   - Parse decodes the YAML strictly (unknown fields are errors with line
//     numbers) and compiles it. Compile validates everything at once and
//     reports every problem in one *ValidationError naming the bot, flow and
//     step: unknown or duplicate ids, goto targets that do not exist, Liquid
//     that does not parse or uses unknown names or filters, content that
//     message.Validate refuses, limits.
//   - json.Marshal of a compiled Bot is its stored form (store.Bot.Definition);
//     FromJSON decodes and compiles it again.
//   - The engine walks compiled flows with Flow, Step, Next and Branch, and
//     renders step content with the Render methods. Compiled bots are
//     immutable and safe for concurrent use.
package bot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/template"
)

// Bot is one bot document.
type Bot struct {
	Name        string `yaml:"name" json:"name"`
	DefaultFlow string `yaml:"default_flow" json:"default_flow"`
	// ConversationTTL closes a conversation this long after its last
	// interaction; zero takes the engine's default.
	ConversationTTL Duration     `yaml:"conversation_ttl,omitempty" json:"conversation_ttl,omitempty"`
	Call            CallSettings `yaml:"call,omitempty" json:"call,omitzero"`
	Flows           []*Flow      `yaml:"flows" json:"flows"`

	flows       map[string]*Flow // lower-cased id and name
	defaultFlow *Flow
}

// CallSettings apply to every call step of the bot.
type CallSettings struct {
	// Secret signs call requests (Standard Webhooks): "whsec_" followed by
	// base64. Required when the bot has call steps.
	Secret string `yaml:"secret,omitempty" json:"secret,omitempty"`
	// AllowHTTP permits http:// call URLs, for local development.
	AllowHTTP bool `yaml:"allow_http,omitempty" json:"allow_http,omitempty"`
	// Timeout of each call unless the step sets its own (default 5s).
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Flow is a named sequence of steps.
type Flow struct {
	ID    string  `yaml:"id" json:"id"`
	Name  string  `yaml:"name,omitempty" json:"name,omitempty"`
	Steps []*Step `yaml:"steps" json:"steps"`

	bot   *Bot
	steps map[string]*Step // lower-cased key
	all   []*Step          // every step, nested ones included, in document order
	line  int
}

// Kind is what a step does.
type Kind string

// Step kinds.
const (
	KindSay  Kind = "say"
	KindAsk  Kind = "ask"
	KindSet  Kind = "set"
	KindIf   Kind = "if"
	KindGoto Kind = "goto"
	KindCall Kind = "call"
	KindEnd  Kind = "end"
)

// Step is one instruction. Exactly one of Say, Ask, Set, If, Goto, Call and
// End is set; Then and Else belong to If.
type Step struct {
	ID   string         `yaml:"id,omitempty" json:"id,omitempty"`
	Say  *Say           `yaml:"say,omitempty" json:"say,omitempty"`
	Ask  *Ask           `yaml:"ask,omitempty" json:"ask,omitempty"`
	Set  map[string]any `yaml:"set,omitempty" json:"set,omitempty"`
	If   *Condition     `yaml:"if,omitempty" json:"if,omitempty"`
	Then *Branch        `yaml:"then,omitempty" json:"then,omitempty"`
	Else *Branch        `yaml:"else,omitempty" json:"else,omitempty"`
	Goto *Target        `yaml:"goto,omitempty" json:"goto,omitempty"`
	Call *Call          `yaml:"call,omitempty" json:"call,omitempty"`
	End  bool           `yaml:"end,omitempty" json:"end,omitempty"`

	kind Kind
	key  string // ID, or a generated "#n" path
	flow *Flow
	next *Step // nil: the flow ends after this step
	set  []setVar
	line int
}

// Say is one outgoing message. Text alone is a text message; Text with
// Buttons or QuickReplies is a question with choices; Image, File, Card,
// Carousel and Typing are the other message kinds (Text is then a caption).
// Every string is a Liquid template.
type Say struct {
	Text         string   `yaml:"text,omitempty" json:"text,omitempty"`
	Buttons      []Button `yaml:"buttons,omitempty" json:"buttons,omitempty"`
	QuickReplies []Button `yaml:"quick_replies,omitempty" json:"quick_replies,omitempty"`
	Image        *Media   `yaml:"image,omitempty" json:"image,omitempty"`
	File         *Media   `yaml:"file,omitempty" json:"file,omitempty"`
	Card         *Card    `yaml:"card,omitempty" json:"card,omitempty"`
	Carousel     []Card   `yaml:"carousel,omitempty" json:"carousel,omitempty"`
	Typing       Duration `yaml:"typing,omitempty" json:"typing,omitempty"`

	tpl *contentTemplate
}

// Button is a choice. A button with a URL opens it instead of answering.
type Button struct {
	Title   string `yaml:"title" json:"title"`
	Payload string `yaml:"payload,omitempty" json:"payload,omitempty"`
	URL     string `yaml:"url,omitempty" json:"url,omitempty"`
}

// Media is an image or file by URL.
type Media struct {
	URL      string `yaml:"url" json:"url"`
	Name     string `yaml:"name,omitempty" json:"name,omitempty"`
	MimeType string `yaml:"mime_type,omitempty" json:"mime_type,omitempty"`
}

// Card is a titled block with an optional image and buttons.
type Card struct {
	Title    string   `yaml:"title" json:"title"`
	Subtitle string   `yaml:"subtitle,omitempty" json:"subtitle,omitempty"`
	ImageURL string   `yaml:"image_url,omitempty" json:"image_url,omitempty"`
	Buttons  []Button `yaml:"buttons,omitempty" json:"buttons,omitempty"`
}

// Ask sends an optional prompt and waits for the user's next message, which
// it stores in memory under Var.
type Ask struct {
	Var    string `yaml:"var" json:"var"`
	Prompt *Say   `yaml:"prompt,omitempty" json:"prompt,omitempty"`
	// Type "number" accepts only numbers and stores them as numbers;
	// "text" (the default) stores the text as typed.
	Type string `yaml:"type,omitempty" json:"type,omitempty"`
	// Choices, when set, restrict the answer: a button click (payload) or
	// a typed title or payload (case-insensitively), or the choice's
	// number. The stored value is the choice's payload, or its title when
	// it has none. A text prompt is sent with the choices as quick replies.
	Choices []Button `yaml:"choices,omitempty" json:"choices,omitempty"`
	// Retry is sent before asking again after an unacceptable answer
	// (Liquid; default "Sorry, I didn't get that.").
	Retry string `yaml:"retry,omitempty" json:"retry,omitempty"`
	// MaxRetries is how many times to ask again (default 2). After that
	// the flow goes to OnFail, or carries on with the next step leaving
	// Var unset.
	MaxRetries int     `yaml:"max_retries,omitempty" json:"max_retries,omitempty"`
	OnFail     *Target `yaml:"on_fail,omitempty" json:"on_fail,omitempty"`

	prompt *contentTemplate // Prompt with the choices as quick replies
	retry  *contentTemplate
}

// Condition is the test of an if step: Value (a Liquid template) compared
// with one operator, or All, Any or Not of other conditions.
//
// Comparisons are numeric when both sides are numbers, otherwise they
// compare the strings case-insensitively after trimming spaces. Operands are
// Liquid templates too.
type Condition struct {
	Value    string       `yaml:"value,omitempty" json:"value,omitempty"`
	Eq       *string      `yaml:"eq,omitempty" json:"eq,omitempty"`
	Ne       *string      `yaml:"ne,omitempty" json:"ne,omitempty"`
	Lt       *string      `yaml:"lt,omitempty" json:"lt,omitempty"`
	Lte      *string      `yaml:"lte,omitempty" json:"lte,omitempty"`
	Gt       *string      `yaml:"gt,omitempty" json:"gt,omitempty"`
	Gte      *string      `yaml:"gte,omitempty" json:"gte,omitempty"`
	Contains *string      `yaml:"contains,omitempty" json:"contains,omitempty"`
	Empty    *bool        `yaml:"empty,omitempty" json:"empty,omitempty"`
	All      []*Condition `yaml:"all,omitempty" json:"all,omitempty"`
	Any      []*Condition `yaml:"any,omitempty" json:"any,omitempty"`
	Not      *Condition   `yaml:"not,omitempty" json:"not,omitempty"`

	op      string
	value   *template.Template
	operand *template.Template
}

// Branch is where an if step continues: a goto target or nested steps. In
// YAML it is a step id, a {flow, step} mapping, or a list of steps.
type Branch struct {
	Goto  *Target `json:"goto,omitempty"`
	Steps []*Step `json:"steps,omitempty"`
}

// Target names a step: Step in the current flow, the first step of Flow, or
// Step in Flow. Flows match by id or name, steps by id, case-insensitively.
// In YAML and JSON a plain string is a step of the current flow.
type Target struct {
	Flow string `yaml:"flow,omitempty" json:"flow,omitempty"`
	Step string `yaml:"step,omitempty" json:"step,omitempty"`

	to *Step // resolved by Compile
}

// Call posts the conversation to the bot developer's endpoint; its answer can
// add messages, set memory and go somewhere (see docs/BOTS.md).
type Call struct {
	URL     string   `yaml:"url" json:"url"`
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// OnError is where to go when the call fails (transport error, non-2xx,
	// bad answer). Without it ErrorMessage is sent and the flow carries on.
	OnError *Target `yaml:"on_error,omitempty" json:"on_error,omitempty"`
	// ErrorMessage is Liquid (default "Sorry, something went wrong.").
	ErrorMessage string `yaml:"error_message,omitempty" json:"error_message,omitempty"`

	errorMessage *contentTemplate
}

// Duration is a time.Duration written as a string such as "90s" or "24h".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 1.5s, 10m, 24h)", s)
	}
	return Duration(v), nil
}

// MarshalJSON writes d as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a string such as "24h".
func (d *Duration) UnmarshalJSON(b []byte) (err error) {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*d, err = parseDuration(s)
	return err
}

// UnmarshalJSON accepts a step id string or a {flow, step} object.
func (t *Target) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*t = Target{Step: s}
		return nil
	}
	type fields Target
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode((*fields)(t))
}
