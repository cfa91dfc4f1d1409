// Package twiliofake is a local fake of Twilio Programmable Messaging as
// the Twilio plugin uses it: the Messages API (create), signed
// StatusCallbacks for the messages it accepted, and a driver that posts
// signed inbound SMS webhooks. It speaks Twilio's wire format, so the
// gateway's end-to-end tests can use it too.
//
// The server checks Basic auth (20003, also on the Accounts resource that
// health checks fetch), E.164 To (21211), a sender
// (21603), a body or media (21602) and Body ≤ 1,600 characters (21617);
// answers 201 with an "SM…" sid, status queued and GSM-7/UCS-2 segment
// counts; limits each sender to one request per interval (429, code 20429,
// Retry-After), recording any request that arrives before its Retry-After
// elapsed; and answers scripted errors per recipient or per call.
package twiliofake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/plugins/internal/fakekit"
)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// AccountSID and AuthToken are the credentials the server accepts
	// (defaults: "AC" + 32 "a", 32 "b").
	AccountSID, AuthToken string
	// PerSender is the minimum interval between requests of one sender
	// (From or MessagingServiceSid); default 1 s, negative disables.
	PerSender time.Duration
	// Clock is the server's notion of now (default the wall clock).
	Clock fakekit.Clock
	// Client posts StatusCallbacks (default http.DefaultClient).
	Client *http.Client
}

// Message is one message the server accepted.
type Message struct {
	SID                 string
	To, From            string
	MessagingServiceSID string
	Body                string
	MediaURLs           []string
	StatusCallback      string
	NumSegments         int
	At                  time.Time
}

// Call is one Messages API request with valid credentials.
type Call struct {
	To, From, Body string
	At             time.Time
	Status         int // HTTP status answered
	Code           int // Twilio error code, 0 on success
}

// Failure is a scripted error answer.
type Failure struct {
	Status  int // HTTP status, e.g. 400, 429, 500, 503
	Code    int // Twilio error code, e.g. 21211, 20429
	Message string
	// HTML answers with a streamed (chunked) HTML error page, as an edge
	// proxy does for 502/503, instead of Twilio's JSON error.
	HTML bool
}

// Server is the fake Messages API.
type Server struct {
	opts      Options
	srv       *httptest.Server
	limiter   *fakekit.Limiter
	script    fakekit.Script[Failure]
	recipient fakekit.Set[Failure] // To → sticky failure
	calls     fakekit.Log[Call]
	messages  fakekit.Log[Message]

	mu      sync.Mutex
	revoked bool
}

// New starts a server; Close it when done.
func New(opts Options) *Server {
	if opts.AccountSID == "" {
		opts.AccountSID = "AC" + strings.Repeat("a", 32)
	}
	if opts.AuthToken == "" {
		opts.AuthToken = strings.Repeat("b", 32)
	}
	if opts.PerSender == 0 {
		opts.PerSender = time.Second
	}
	s := &Server{opts: opts, limiter: fakekit.NewLimiter(max(opts.PerSender, 0))}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{sid}/Messages.json", s.createMessage)
	// ServeMux wildcards are whole segments: {resource} is "<sid>.json".
	mux.HandleFunc("GET /2010-04-01/Accounts/{resource}", s.fetchAccount)
	s.srv = httptest.NewServer(mux)
	return s
}

// URL is the origin to configure as the plugin's api_base.
func (s *Server) URL() string { return s.srv.URL }

// AccountSID and AuthToken are the accepted credentials.
func (s *Server) AccountSID() string { return s.opts.AccountSID }

// AuthToken is the accepted auth token, which also signs callbacks.
func (s *Server) AuthToken() string { return s.opts.AuthToken }

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// RevokeToken makes every later request fail with 401, code 20003.
func (s *Server) RevokeToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = true
}

// FailNext scripts the next Messages API request to fail.
func (s *Server) FailNext(f Failure) { s.script.Push("create", f) }

// SetRecipientError makes every message to `to` fail with code (HTTP 400),
// e.g. 21610 (replied STOP), 21614 (not a mobile number), 21612.
func (s *Server) SetRecipientError(to string, code int) {
	s.recipient.Put(to, Failure{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf("error %d for %s", code, to)})
}

// Calls returns every Messages API request made with valid credentials.
func (s *Server) Calls() []Call { return s.calls.All() }

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message { return s.messages.All() }

// EarlyRetries returns the requests that arrived before the Retry-After the
// server had given their sender elapsed. A correct client has none.
func (s *Server) EarlyRetries() []fakekit.EarlyRetry { return s.limiter.Early() }

// SendStatus posts a signed StatusCallback for an accepted message, as
// Twilio does on each state change (queued → sent → delivered, or
// undelivered/failed with errorCode). Tests may call it twice or out of
// order, as Twilio may.
func (s *Server) SendStatus(ctx context.Context, sid, status string, errorCode int) (*fakekit.Response, error) {
	for _, m := range s.messages.All() {
		if m.SID != sid {
			continue
		}
		if m.StatusCallback == "" {
			return nil, fmt.Errorf("message %s has no StatusCallback", sid)
		}
		d := &Driver{AuthToken: s.opts.AuthToken, AccountSID: s.opts.AccountSID, Client: s.opts.Client}
		from := m.From
		if from == "" {
			from = m.MessagingServiceSID
		}
		return d.Post(ctx, d.StatusCallback(m.StatusCallback, sid, status, errorCode, from, m.To))
	}
	return nil, fmt.Errorf("no message %s", sid)
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// authorize answers a request whose credentials or account (sid, from
// the path) are wrong and reports whether it did.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, sid string) (refused bool) {
	user, pass, ok := r.BasicAuth()
	s.mu.Lock()
	revoked := s.revoked
	s.mu.Unlock()
	if !ok || user != s.opts.AccountSID || pass != s.opts.AuthToken || revoked {
		writeError(w, Failure{Status: http.StatusUnauthorized, Code: 20003, Message: "Authenticate"}, 0)
		return true
	}
	if sid != s.opts.AccountSID {
		writeError(w, Failure{Status: http.StatusNotFound, Code: 20404, Message: "The requested resource was not found"}, 0)
		return true
	}
	return false
}

// fetchAccount answers the Accounts resource, which the plugin's health
// check reads.
func (s *Server) fetchAccount(w http.ResponseWriter, r *http.Request) {
	sid, _ := strings.CutSuffix(r.PathValue("resource"), ".json")
	if s.authorize(w, r, sid) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"sid": s.opts.AccountSID, "friendly_name": "Fake account", "status": "active", "type": "Full",
		"uri": "/2010-04-01/Accounts/" + s.opts.AccountSID + ".json",
	})
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) {
	now := s.opts.Clock.Now()
	if s.authorize(w, r, r.PathValue("sid")) {
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 20001, Message: "Invalid form"}, 0)
		return
	}
	f := r.PostForm
	m := Message{
		SID: NewSID("SM"), To: f.Get("To"), From: f.Get("From"), MessagingServiceSID: f.Get("MessagingServiceSid"),
		Body: f.Get("Body"), MediaURLs: f["MediaUrl"], StatusCallback: f.Get("StatusCallback"), At: now,
	}
	fail, retry := s.check(m, now)
	if fail.Status != 0 {
		s.calls.Add(Call{To: m.To, From: m.From, Body: m.Body, At: now, Status: fail.Status, Code: fail.Code})
		writeError(w, fail, retry)
		return
	}
	m.NumSegments = Segments(m.Body)
	s.messages.Add(m)
	s.calls.Add(Call{To: m.To, From: m.From, Body: m.Body, At: now, Status: http.StatusCreated})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"sid": m.SID, "account_sid": s.opts.AccountSID, "to": m.To, "from": nullable(m.From),
		"messaging_service_sid": nullable(m.MessagingServiceSID), "body": m.Body, "status": "queued",
		"num_segments": strconv.Itoa(m.NumSegments), "num_media": strconv.Itoa(len(m.MediaURLs)),
		"direction": "outbound-api", "api_version": "2010-04-01", "error_code": nil, "error_message": nil,
		"date_created": now.UTC().Format(time.RFC1123Z), "price": nil, "price_unit": "USD",
		"uri": "/2010-04-01/Accounts/" + s.opts.AccountSID + "/Messages/" + m.SID + ".json",
	})
}

// check returns the failure a request meets, in Twilio's order: scripted,
// validation, per-recipient, then the sender's throughput.
func (s *Server) check(m Message, now time.Time) (Failure, time.Duration) {
	if f, ok := s.script.Pop("create"); ok {
		return f, 0
	}
	switch {
	case !e164.MatchString(m.To):
		return Failure{Status: 400, Code: 21211, Message: fmt.Sprintf("The 'To' number %s is not a valid phone number.", m.To)}, 0
	case m.From == "" && m.MessagingServiceSID == "":
		return Failure{Status: 400, Code: 21603, Message: "A 'From' phone number is required."}, 0
	case m.Body == "" && len(m.MediaURLs) == 0:
		return Failure{Status: 400, Code: 21602, Message: "Message body is required."}, 0
	case utf16Len(m.Body) > 1600:
		return Failure{Status: 400, Code: 21617, Message: "The concatenated message body exceeds the 1600 character limit."}, 0
	}
	if f, ok := s.recipient.Get(m.To); ok {
		return f, 0
	}
	sender := m.From
	if sender == "" {
		sender = m.MessagingServiceSID
	}
	if retry, ok := s.limiter.Take(sender, now); !ok {
		return Failure{Status: http.StatusTooManyRequests, Code: 20429, Message: "Too Many Requests"}, retry
	}
	return Failure{}, 0
}

func writeError(w http.ResponseWriter, f Failure, retryAfter time.Duration) {
	if f.HTML {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(f.Status)
		fmt.Fprintf(w, "<html><head><title>%d</title></head>", f.Status)
		w.(http.Flusher).Flush()
		fmt.Fprintf(w, "<body>%s</body></html>", http.StatusText(f.Status))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
	}
	w.WriteHeader(f.Status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code": f.Code, "message": f.Message, "status": f.Status,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", f.Code),
	})
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }
