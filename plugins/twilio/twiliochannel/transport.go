package twiliochannel

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// api returns a Messages API client for one request. twilio-go takes no
// context and has no base URL option, and it drops the response of a failed
// request, so each request gets a client whose transport (channels.md,
// option A):
//
//   - carries ctx, so cancelling Send cancels the request;
//   - sends requests for *.twilio.com to api_base when it is set;
//   - keeps the status and Retry-After of a failed answer, for classify;
//   - reads and closes error bodies itself: twilio-go stops decoding at the
//     first byte it cannot parse and never closes them, which can strand
//     the connection.
func (in *instance) api(ctx context.Context, hc *http.Client) (*openapi.ApiService, *transport) {
	tr := &transport{ctx: ctx, in: in, base: hc.Transport}
	if tr.base == nil {
		tr.base = http.DefaultTransport
	}
	httpClient := *hc
	httpClient.Transport = tr
	cl := &client.Client{Credentials: client.NewCredentials(in.accountSID, in.authToken), HTTPClient: &httpClient}
	cl.SetAccountSid(in.accountSID) // a custom client does not get it, and the path needs it
	return openapi.NewApiServiceWithClient(cl), tr
}

type transport struct {
	ctx        context.Context
	in         *instance
	base       http.RoundTripper
	status     int // of the last error answer
	retryAfter time.Duration
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(t.ctx)
	if b := t.in.apiBase; b != nil && (req.URL.Hostname() == "twilio.com" || strings.HasSuffix(req.URL.Hostname(), ".twilio.com")) {
		req.URL.Scheme, req.URL.Host = b.Scheme, b.Host
		req.URL.Path = strings.TrimSuffix(b.Path, "/") + req.URL.Path
		req.Host = ""
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	t.status = resp.StatusCode
	if s, convErr := strconv.Atoi(resp.Header.Get("Retry-After")); convErr == nil && s > 0 && resp.StatusCode == http.StatusTooManyRequests {
		t.retryAfter = time.Duration(s) * time.Second
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	if readErr != nil {
		return nil, readErr
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// maxErrorBody bounds what is kept of an error answer (Twilio's are small JSON).
const maxErrorBody = 64 << 10
