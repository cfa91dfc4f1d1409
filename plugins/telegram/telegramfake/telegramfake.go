// Package telegramfake is a local fake of the Telegram Bot API methods the
// Telegram plugin uses, and a driver that delivers webhook updates with a
// right, wrong or missing secret token. Both speak Telegram's wire format, so
// the gateway's end-to-end tests can use them too.
//
// The server routes /bot<token>/<method> (another token gets 404, a revoked
// one 401), accepts JSON, form and multipart parameters, validates text,
// caption and inline keyboard limits, returns increasing message ids, limits
// each chat to one message per interval (429 with parameters.retry_after),
// records every request that arrives before its retry_after elapsed, and
// answers blocked users (403), migrated groups (400 migrate_to_chat_id) and
// scripted failures on demand.
package telegramfake

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/plugins/internal/fakekit"
)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// Token is the bot token the server accepts (default "123456:FAKE-token_abc").
	Token string
	// PerChat is the minimum interval between messages to one chat
	// (default 1 s; negative disables limiting).
	PerChat time.Duration
	// Clock is the server's notion of now (default the wall clock).
	Clock fakekit.Clock
}

// Call is one Bot API request with a valid token.
type Call struct {
	Method string
	Params url.Values // nested JSON (reply_markup) as its JSON text
	At     time.Time
	Status int // HTTP status answered (= error_code)
}

// Sent is one message the server accepted (sendMessage, sendPhoto, sendDocument).
type Sent struct {
	Method      string
	ChatID      string
	MessageID   int64
	Text        string // text or caption
	Media       string // photo or document
	ReplyMarkup json.RawMessage
	At          time.Time
}

// Webhook is the registration made with setWebhook.
type Webhook struct {
	URL, SecretToken string
	AllowedUpdates   []string
}

// Failure is a scripted error answer.
type Failure struct {
	Status      int // the error_code, e.g. 400, 403, 429, 500
	Description string
	RetryAfter  int // seconds, for 429
}

// Server is the fake Bot API.
type Server struct {
	opts    Options
	srv     *httptest.Server
	limiter *fakekit.Limiter
	script  fakekit.Script[Failure]
	blocked fakekit.Set[string] // chat id → description of the 403
	migrate fakekit.Set[int64]  // group chat id → supergroup id
	calls   fakekit.Log[Call]
	sent    fakekit.Log[Sent]

	mu      sync.Mutex
	revoked bool
	nextID  int64
	webhook *Webhook
}

// New starts a server; Close it when done.
func New(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = "123456:FAKE-token_abc"
	}
	if opts.PerChat == 0 {
		opts.PerChat = time.Second
	}
	s := &Server{opts: opts, limiter: fakekit.NewLimiter(max(opts.PerChat, 0))}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the API base to configure as the plugin's api_url.
func (s *Server) URL() string { return s.srv.URL }

// Token is the bot token the server accepts.
func (s *Server) Token() string { return s.opts.Token }

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// RevokeToken makes every later call answer 401 Unauthorized.
func (s *Server) RevokeToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = true
}

// BlockChat makes sends to chat fail with 403 "Forbidden: bot was blocked by the user".
func (s *Server) BlockChat(chat string) {
	s.blocked.Put(chat, "Forbidden: bot was blocked by the user")
}

// MigrateChat makes sends to the group chat fail with 400 and
// parameters.migrate_to_chat_id = to, as after an upgrade to a supergroup.
func (s *Server) MigrateChat(chat string, to int64) { s.migrate.Put(chat, to) }

// FailNext scripts the next call of method (e.g. "sendMessage") to fail.
func (s *Server) FailNext(method string, f Failure) { s.script.Push(method, f) }

// Calls returns the requests made with a valid token, optionally only those of one method.
func (s *Server) Calls(method string) []Call {
	var out []Call
	for _, c := range s.calls.All() {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Sent returns the messages accepted so far.
func (s *Server) Sent() []Sent { return s.sent.All() }

// Webhook returns the current setWebhook registration, nil without one.
func (s *Server) Webhook() *Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhook
}

// EarlyRetries returns the messages that arrived before the retry_after the
// server had given for their chat elapsed. A correct client has none.
func (s *Server) EarlyRetries() []fakekit.EarlyRetry { return s.limiter.Early() }

// answer is a method's reply.
type answer struct {
	status int
	body   map[string]any
}

func ok(result any) answer {
	return answer{status: http.StatusOK, body: map[string]any{"ok": true, "result": result}}
}

func fail(status int, description string) answer {
	return answer{status: status, body: map[string]any{"ok": false, "error_code": status, "description": description}}
}

func (f Failure) answer() answer {
	a := fail(f.Status, f.Description)
	if f.RetryAfter > 0 {
		a.body["parameters"] = map[string]any{"retry_after": f.RetryAfter}
	}
	return a
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	now := s.opts.Clock.Now()
	a, method, params := s.route(r, now)
	if method != "" {
		s.calls.Add(Call{Method: method, Params: params, At: now, Status: a.status})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(a.body)
}

// route authenticates and dispatches; method is "" when the token was wrong.
func (s *Server) route(r *http.Request, now time.Time) (answer, string, url.Values) {
	token, method, found := strings.Cut(strings.TrimPrefix(r.URL.Path, "/bot"), "/")
	if !found || !strings.HasPrefix(r.URL.Path, "/bot") || token != s.opts.Token {
		return fail(http.StatusNotFound, "Not Found"), "", nil
	}
	s.mu.Lock()
	revoked := s.revoked
	s.mu.Unlock()
	if revoked {
		return fail(http.StatusUnauthorized, "Unauthorized"), "", nil
	}
	params, err := parseParams(r)
	if err != nil {
		return fail(http.StatusBadRequest, "Bad Request: "+err.Error()), method, params
	}
	if f, scripted := s.script.Pop(method); scripted {
		return f.answer(), method, params
	}
	switch method {
	case "getMe":
		return ok(map[string]any{"id": botID(s.opts.Token), "is_bot": true, "first_name": "Fake", "username": "fake_bot"}), method, params
	case "setWebhook":
		return s.setWebhook(params), method, params
	case "deleteWebhook":
		s.mu.Lock()
		s.webhook = nil
		s.mu.Unlock()
		return ok(true), method, params
	case "answerCallbackQuery":
		if params.Get("callback_query_id") == "" {
			return fail(http.StatusBadRequest, "Bad Request: QUERY_ID_INVALID"), method, params
		}
		return ok(true), method, params
	case "sendChatAction":
		if params.Get("chat_id") == "" || params.Get("action") == "" {
			return fail(http.StatusBadRequest, "Bad Request: chat_id is empty"), method, params
		}
		return ok(true), method, params
	case "sendMessage", "sendPhoto", "sendDocument":
		return s.sendMessage(method, params, now), method, params
	default:
		return fail(http.StatusNotFound, "Not Found: method not found"), method, params
	}
}

func (s *Server) setWebhook(p url.Values) answer {
	u, err := url.Parse(p.Get("url"))
	if err != nil || u.Host == "" {
		return fail(http.StatusBadRequest, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
	}
	if t := p.Get("secret_token"); t != "" && !validSecret(t) {
		return fail(http.StatusBadRequest, "Bad Request: bad webhook: secret token contains unallowed characters")
	}
	wh := &Webhook{URL: p.Get("url"), SecretToken: p.Get("secret_token")}
	_ = json.Unmarshal([]byte(p.Get("allowed_updates")), &wh.AllowedUpdates)
	s.mu.Lock()
	s.webhook = wh
	s.mu.Unlock()
	return ok(true)
}

func (s *Server) sendMessage(method string, p url.Values, now time.Time) answer {
	chat := p.Get("chat_id")
	text, media := p.Get("text"), ""
	switch method {
	case "sendMessage":
		if text == "" {
			return fail(http.StatusBadRequest, "Bad Request: message text is empty")
		}
		if utf16Len(text) > 4096 {
			return fail(http.StatusBadRequest, "Bad Request: message is too long")
		}
	case "sendPhoto", "sendDocument":
		media = p.Get(map[string]string{"sendPhoto": "photo", "sendDocument": "document"}[method])
		if media == "" {
			return fail(http.StatusBadRequest, "Bad Request: there is no "+strings.TrimPrefix(strings.ToLower(method), "send")+" in the request")
		}
		text = p.Get("caption")
		if utf16Len(text) > 1024 {
			return fail(http.StatusBadRequest, "Bad Request: message caption is too long")
		}
	}
	if chat == "" {
		return fail(http.StatusBadRequest, "Bad Request: chat_id is empty")
	}
	if d, blocked := s.blocked.Get(chat); blocked {
		return fail(http.StatusForbidden, d)
	}
	if to, migrated := s.migrate.Get(chat); migrated {
		a := fail(http.StatusBadRequest, "Bad Request: group chat was upgraded to a supergroup chat")
		a.body["parameters"] = map[string]any{"migrate_to_chat_id": to}
		return a
	}
	if err := ValidateMarkup(p.Get("reply_markup")); err != nil {
		return fail(http.StatusBadRequest, "Bad Request: "+err.Error())
	}
	if retry, allowed := s.limiter.Take(chat, now); !allowed {
		a := fail(http.StatusTooManyRequests, fmt.Sprintf("Too Many Requests: retry after %d", int(retry/time.Second)))
		a.body["parameters"] = map[string]any{"retry_after": int(retry / time.Second)}
		return a
	}
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	s.mu.Unlock()
	m := Sent{Method: method, ChatID: chat, MessageID: id, Text: text, Media: media, At: now}
	if rm := p.Get("reply_markup"); rm != "" {
		m.ReplyMarkup = json.RawMessage(rm)
	}
	s.sent.Add(m)
	chatID, _ := strconv.ParseInt(chat, 10, 64)
	return ok(map[string]any{"message_id": id, "date": now.Unix(), "chat": map[string]any{"id": chatID, "type": "private"}, "text": text})
}

// ValidateMarkup refuses the reply_markup Telegram refuses: inline buttons
// without text, without callback_data or url, or with callback_data outside
// 1-64 bytes; reply keyboard buttons without text.
func ValidateMarkup(raw string) error {
	if raw == "" {
		return nil
	}
	var m struct {
		InlineKeyboard [][]struct {
			Text         string  `json:"text"`
			CallbackData *string `json:"callback_data"`
			URL          *string `json:"url"`
		} `json:"inline_keyboard"`
		Keyboard [][]struct {
			Text string `json:"text"`
		} `json:"keyboard"`
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return fmt.Errorf("can't parse reply keyboard markup JSON object")
	}
	for _, row := range m.InlineKeyboard {
		for _, b := range row {
			switch {
			case b.Text == "":
				return fmt.Errorf("can't parse inline keyboard button: Text is empty")
			case b.CallbackData == nil && b.URL == nil:
				return fmt.Errorf("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
			case b.CallbackData != nil && (len(*b.CallbackData) == 0 || len(*b.CallbackData) > 64):
				return fmt.Errorf("BUTTON_DATA_INVALID")
			}
		}
	}
	for _, row := range m.Keyboard {
		for _, b := range row {
			if b.Text == "" {
				return fmt.Errorf("can't parse keyboard button: Text is empty")
			}
		}
	}
	return nil
}

// parseParams reads parameters the ways the Bot API accepts them: query
// string, form, multipart or a JSON object.
func parseParams(r *http.Request) (url.Values, error) {
	p := r.URL.Query()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		var m map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			return p, fmt.Errorf("can't parse JSON object")
		}
		for k, raw := range m {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				p.Set(k, str)
			} else {
				p.Set(k, string(raw))
			}
		}
	case "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			return p, fmt.Errorf("can't parse multipart form")
		}
		for k, v := range r.MultipartForm.Value {
			p[k] = v
		}
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return p, fmt.Errorf("can't parse form")
		}
		for k, v := range r.PostForm {
			p[k] = v
		}
	}
	return p, nil
}

func validSecret(t string) bool {
	if len(t) > 256 {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func botID(token string) int64 {
	id, _, _ := strings.Cut(token, ":")
	n, _ := strconv.ParseInt(id, 10, 64)
	return n
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}
