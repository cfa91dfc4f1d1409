package fakekit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// Response is what a webhook receiver answered a driver.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Post sends body to url with header, as a platform delivers a webhook, and
// reads the whole answer. A nil client means http.DefaultClient.
func Post(ctx context.Context, client *http.Client, url string, header http.Header, body []byte) (*Response, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build webhook request: %w", err)
	}
	req.Header = header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read webhook answer: %w", err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}
