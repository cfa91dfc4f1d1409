// Package slackfake is a local fake of the parts of Slack that the Slack
// plugin uses: a Web API server (chat.postMessage, conversations.open,
// auth.test) and a driver that delivers signed Events API and interactivity
// requests to a webhook URL. Both speak Slack's wire format, so the gateway's
// end-to-end tests can use them too.
//
// The server checks the bot token (form field or Bearer header, else
// invalid_auth), validates Block Kit against Slack's limits, limits each
// channel to one post per interval (429 + Retry-After + "ratelimited"),
// records every request that arrives before its Retry-After elapsed, and
// answers scripted errors on demand.
package slackfake

import (
	"encoding/json"
	"fmt"
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
	// Token is the bot token the server accepts (default "xoxb-fake-token").
	Token string
	// BotUserID and BotID identify the bot in auth.test (default "UBOT", "BBOT").
	BotUserID, BotID string
	// TeamID is the workspace (default "T0001").
	TeamID string
	// PerChannel is the minimum interval between posts to one channel
	// (default 1 s; negative disables limiting).
	PerChannel time.Duration
	// Clock is the server's notion of now (default the wall clock).
	Clock fakekit.Clock
}

// Call is one Web API request as the server saw it (the token is never
// recorded).
type Call struct {
	Method string
	Args   url.Values // form fields or JSON members (nested JSON as text)
	At     time.Time
	Status int    // HTTP status answered
	Error  string // Slack error code when ok:false
}

// Post is one message chat.postMessage accepted.
type Post struct {
	Channel string
	Text    string
	Blocks  json.RawMessage // nil without blocks
	TS      string
	At      time.Time
}

// Failure is a scripted answer. Status ≥ 400 answers that HTTP status with
// an HTML page, as Slack's front end does for 5xx; otherwise the server
// answers HTTP 200 with ok:false and Error.
type Failure struct {
	Error  string
	Status int
}

// Server is the fake Slack Web API.
type Server struct {
	opts    Options
	srv     *httptest.Server
	limiter *fakekit.Limiter
	script  fakekit.Script[Failure]
	sticky  fakekit.Set[string] // channel or user id → error code
	calls   fakekit.Log[Call]
	posts   fakekit.Log[Post]

	mu      sync.Mutex
	revoked bool
	seq     int
	opened  map[string]bool
}

// New starts a server; Close it when done.
func New(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = "xoxb-fake-token"
	}
	if opts.BotUserID == "" {
		opts.BotUserID = "UBOT"
	}
	if opts.BotID == "" {
		opts.BotID = "BBOT"
	}
	if opts.TeamID == "" {
		opts.TeamID = "T0001"
	}
	if opts.PerChannel == 0 {
		opts.PerChannel = time.Second
	}
	s := &Server{opts: opts, limiter: fakekit.NewLimiter(max(opts.PerChannel, 0)), opened: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/chat.postMessage", s.handle("chat.postMessage", s.postMessage))
	mux.HandleFunc("POST /api/conversations.open", s.handle("conversations.open", s.openConversation))
	mux.HandleFunc("POST /api/auth.test", s.handle("auth.test", s.authTest))
	s.srv = httptest.NewServer(mux)
	return s
}

// URL is the Web API base to configure as the plugin's api_url (with the
// trailing slash slack-go needs).
func (s *Server) URL() string { return s.srv.URL + "/api/" }

// Token is the bot token the server accepts.
func (s *Server) Token() string { return s.opts.Token }

// BotUserID is the bot's own user id.
func (s *Server) BotUserID() string { return s.opts.BotUserID }

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// RevokeToken makes every later call fail with token_revoked.
func (s *Server) RevokeToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = true
}

// FailNext scripts the next call of method (e.g. "chat.postMessage") to fail.
func (s *Server) FailNext(method string, f Failure) { s.script.Push(method, f) }

// SetTargetError makes every post to a channel, and every
// conversations.open of a user, fail with code (e.g. channel_not_found,
// is_archived, user_not_found) until cleared with an empty code.
func (s *Server) SetTargetError(target, code string) {
	if code == "" {
		s.sticky.Delete(target)
		return
	}
	s.sticky.Put(target, code)
}

// Calls returns every request so far, optionally only those of one method.
func (s *Server) Calls(method string) []Call {
	var out []Call
	for _, c := range s.calls.All() {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Posts returns the messages accepted so far.
func (s *Server) Posts() []Post { return s.posts.All() }

// EarlyRetries returns the posts that arrived before the Retry-After the
// server had given for their channel elapsed. A correct client has none.
func (s *Server) EarlyRetries() []fakekit.EarlyRetry { return s.limiter.Early() }

// DMChannel is the DM channel id conversations.open returns for user.
func DMChannel(user string) string { return "D" + strings.TrimLeft(user, "UW") }

// answer is a method's reply: HTTP status, JSON body and extra headers.
type answer struct {
	status int
	body   map[string]any
	header http.Header
}

func okAnswer(fields map[string]any) answer {
	fields["ok"] = true
	return answer{status: http.StatusOK, body: fields}
}

func slackError(code string) answer {
	return answer{status: http.StatusOK, body: map[string]any{"ok": false, "error": code}}
}

// handle wraps a method with what every Web API call shares: argument
// parsing, token check, scripted failures and recording.
func (s *Server) handle(method string, fn func(args url.Values, now time.Time) answer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		now := s.opts.Clock.Now()
		args, token, err := parseArgs(r)
		a := s.authorize(token, err)
		if a.status == 0 {
			switch f, scripted := s.script.Pop(method); {
			case scripted && f.Status >= 400:
				a = answer{status: f.Status}
			case scripted:
				a = slackError(f.Error)
			default:
				a = fn(args, now)
			}
		}
		code, _ := a.body["error"].(string)
		s.calls.Add(Call{Method: method, Args: args, At: now, Status: a.status, Error: code})
		for k, vs := range a.header {
			w.Header()[k] = vs
		}
		if a.body == nil {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(a.status)
			fmt.Fprintf(w, "<html><body>%d %s</body></html>", a.status, http.StatusText(a.status))
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(a.status)
		_ = json.NewEncoder(w).Encode(a.body)
	}
}

// authorize answers a request whose arguments or token are bad; a zero
// answer lets it through.
func (s *Server) authorize(token string, parseErr error) answer {
	s.mu.Lock()
	revoked := s.revoked
	s.mu.Unlock()
	switch {
	case parseErr != nil:
		return slackError("invalid_arguments")
	case token == "":
		return slackError("not_authed")
	case token != s.opts.Token:
		return slackError("invalid_auth")
	case revoked:
		return slackError("token_revoked")
	}
	return answer{}
}

// parseArgs reads a form (token in the body or a Bearer header, as slack-go
// sends it) or a JSON body (Bearer only, as Slack requires).
func parseArgs(r *http.Request) (url.Values, string, error) {
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			return nil, token, err
		}
		args := url.Values{}
		for k, raw := range m {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				args.Set(k, str)
			} else {
				args.Set(k, string(raw))
			}
		}
		return args, token, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, token, err
	}
	args := r.PostForm
	if t := args.Get("token"); t != "" {
		token = t
		args.Del("token")
	}
	return args, token, nil
}

func (s *Server) authTest(url.Values, time.Time) answer {
	return okAnswer(map[string]any{
		"url": "https://fake.slack.com/", "team": "Fake", "user": "bot", "team_id": s.opts.TeamID,
		"user_id": s.opts.BotUserID, "bot_id": s.opts.BotID,
	})
}

func (s *Server) openConversation(args url.Values, _ time.Time) answer {
	users := args.Get("users")
	if users == "" || strings.Contains(users, ",") {
		return slackError("users_list_not_supplied")
	}
	if code, ok := s.sticky.Get(users); ok {
		return slackError(code)
	}
	ch := DMChannel(users)
	s.mu.Lock()
	already := s.opened[ch]
	s.opened[ch] = true
	s.mu.Unlock()
	return okAnswer(map[string]any{"no_op": already, "already_open": already, "channel": map[string]any{"id": ch}})
}

func (s *Server) postMessage(args url.Values, now time.Time) answer {
	channel := args.Get("channel")
	if channel == "" {
		return slackError("channel_not_found")
	}
	if code, ok := s.sticky.Get(channel); ok {
		return slackError(code)
	}
	text, blocks := args.Get("text"), args.Get("blocks")
	if strings.TrimSpace(text) == "" && blocks == "" {
		return slackError("no_text")
	}
	if len([]rune(text)) > 40_000 {
		return slackError("msg_too_long")
	}
	if blocks != "" {
		if err := ValidateBlocks(blocks); err != nil {
			return slackError("invalid_blocks")
		}
	}
	if retry, ok := s.limiter.Take(channel, now); !ok {
		a := slackError("ratelimited")
		a.status = http.StatusTooManyRequests
		a.header = http.Header{"Retry-After": {strconv.Itoa(int(retry / time.Second))}}
		return a
	}
	s.mu.Lock()
	s.seq++
	ts := fmt.Sprintf("%d.%06d", now.Unix(), s.seq)
	s.mu.Unlock()
	p := Post{Channel: channel, Text: text, TS: ts, At: now}
	if blocks != "" {
		p.Blocks = json.RawMessage(blocks)
	}
	s.posts.Add(p)
	return okAnswer(map[string]any{"channel": channel, "ts": ts, "message": map[string]any{
		"type": "message", "text": text, "user": s.opts.BotUserID, "bot_id": s.opts.BotID, "ts": ts,
	}})
}
