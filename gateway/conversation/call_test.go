package conversation_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchboard-gw/switchboard/gateway/conversation"
	"github.com/switchboard-gw/switchboard/gateway/netguard"
	"github.com/switchboard-gw/switchboard/sdk/message"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func callBot(url string) string {
	return `
name: caller
default_flow: main
call: {secret: "` + secret + `"}
flows:
  - id: main
    steps:
      - ask: {var: order, prompt: "Order number?"}
      - id: lookup
        call: {url: "` + url + `", on_error: {flow: oops}}
      - say: "Status: {{ memory.status }}"
      - id: skipped
        say: "not reached when the answer says goto"
      - id: after
        say: "Done, {{ memory.order }}."
  - id: oops
    steps:
      - say: "The order service is down."
  - id: plain
    steps:
      - call: "` + url + `"
      - say: "carried on"
`
}

// endpoint is a bot developer's HTTPS endpoint verifying the signature.
type endpoint struct {
	t      *testing.T
	srv    *httptest.Server
	calls  atomic.Int32
	answer func(req conversation.CallRequest) (int, string)
}

func newEndpoint(t *testing.T) *endpoint {
	ep := &endpoint{t: t}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	ep.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ep.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var req conversation.CallRequest
		if err := json.Unmarshal(body, &req); err != nil {
			t.Errorf("request body: %v", err)
		}
		status, answer := ep.answer(req)
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(ep.srv.Close)
	return ep
}

// allowLocal lets call steps reach the test server (loopback) and trust its
// certificate.
func (ep *endpoint) allowLocal(o *conversation.Options) {
	o.Call.Net = netguard.Options{AllowPrivate: true}
	o.Call.TLS = ep.srv.Client().Transport.(*http.Transport).TLSClientConfig
}

func TestCallStep(t *testing.T) {
	ep := newEndpoint(t)
	ep.answer = func(req conversation.CallRequest) (int, string) {
		if req.Type != "call" || req.Bot.Name != "caller" || req.Conversation.Step != "lookup" ||
			req.Memory["order"] != "A-17" || req.User["id"] != "u1" || req.Metadata["plan"] != "pro" {
			t.Errorf("request: %+v", req)
		}
		if _, leaked := req.Memory["_engine"]; leaked {
			t.Error("engine state sent to the endpoint")
		}
		return 200, `{"messages":[{"type":"text","text":"Found it."}],"memory":{"status":"shipped"},"goto":"after"}`
	}
	e := newEnv(t, callBot(ep.srv.URL), ep.allowLocal)
	e.must(conversation.Input{Kind: conversation.KindMessage, Content: message.Text("hi"), Metadata: map[string]any{"plan": "pro"}})
	out := e.say("A-17")
	wantTexts(t, out, "Found it.", "Done, A-17.")
	if out.Conversation.Memory["status"] != "shipped" {
		t.Errorf("memory from the answer: %v", out.Conversation.Memory)
	}

	// Without a goto the flow carries on with the next step.
	ep.answer = func(conversation.CallRequest) (int, string) { return 200, `{"memory":{"status":"packed"}}` }
	e.say("hi")
	wantTexts(t, e.say("B-2"), "Status: packed", "not reached when the answer says goto", "Done, B-2.")
}

func TestCallStepFailures(t *testing.T) {
	ep := newEndpoint(t)
	cases := []struct {
		name   string
		status int
		body   string
	}{
		{"server error", 500, `{}`},
		{"bad json", 200, `{"messages":`},
		{"unknown field", 200, `{"mesages":[]}`},
		{"invalid message", 200, `{"messages":[{"type":"text"}]}`},
		{"bad memory name", 200, `{"memory":{"_engine":1}}`},
		{"bad goto", 200, `{"goto":{"flow":"nowhere"}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ep.answer = func(conversation.CallRequest) (int, string) { return c.status, c.body }
			e := newEnv(t, callBot(ep.srv.URL), ep.allowLocal)
			e.say("hi")
			// on_error goes to the oops flow.
			out := e.say("A-1")
			wantTexts(t, out, "The order service is down.")
			if _, ok := out.Conversation.Memory["_engine"].(map[string]any); !ok {
				t.Errorf("a failed answer changed the engine's state: %v", out.Conversation.Memory)
			}
			// Without on_error: the error message, then the next step.
			wantTexts(t, e.trigger("plain", "", true, nil), "Sorry, something went wrong.", "carried on")
		})
	}
}

// TestCallStepRefusesInternalAddresses: with the default guard the engine
// will not dial the (loopback) endpoint at all.
func TestCallStepRefusesInternalAddresses(t *testing.T) {
	ep := newEndpoint(t)
	ep.answer = func(conversation.CallRequest) (int, string) { return 200, `{}` }
	e := newEnv(t, callBot(ep.srv.URL), func(o *conversation.Options) {
		o.Call.TLS = ep.srv.Client().Transport.(*http.Transport).TLSClientConfig
	})
	out := e.trigger("plain", "", true, nil)
	wantTexts(t, out, "Sorry, something went wrong.", "carried on")
	if n := ep.calls.Load(); n != 0 {
		t.Errorf("the guard let %d calls through", n)
	}
}

func TestCallStepHTTPNeedsAllowHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"messages":[{"type":"text","text":"plain http"}]}`)
	}))
	defer srv.Close()
	doc := strings.Replace(callBot(srv.URL), `call: {secret:`, `call: {allow_http: true, secret:`, 1)
	e := newEnv(t, doc, func(o *conversation.Options) { o.Call.Net = netguard.Options{AllowPrivate: true} })
	wantTexts(t, e.trigger("plain", "", true, nil), "plain http", "carried on")
}

// TestCallStepRefusesZonedLoopback: a zoned spelling of the loopback
// endpoint's address ([::1%25lo], which netip.Prefix.Contains never
// matches) is refused like the plain one.
func TestCallStepRefusesZonedLoopback(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	var calls atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.WriteString(w, `{"messages":[{"type":"text","text":"internal content"}]}`)
	}))
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	// Plain http: a certificate check of the zoned name would fail first
	// and hide whether the guard refused the address.
	doc := strings.Replace(callBot("http://[::1%25lo]:"+port+"/"), `call: {secret:`, `call: {allow_http: true, secret:`, 1)
	e := newEnv(t, doc)
	wantTexts(t, e.trigger("plain", "", true, nil), "Sorry, something went wrong.", "carried on")
	if n := calls.Load(); n != 0 {
		t.Errorf("the guard let %d calls through", n)
	}
}
