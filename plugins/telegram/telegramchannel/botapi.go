package telegramchannel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// botAPI calls Bot API methods as JSON POSTs to <api>/bot<token>/<method>.
type botAPI struct {
	http *http.Client
	base string // <api>/bot<token>/ — contains the token, never put it in an error
}

func newBotAPI(client *http.Client, apiURL, token string) *botAPI {
	return &botAPI{http: client, base: strings.TrimSuffix(apiURL, "/") + "/bot" + token + "/"}
}

// apiError is an ok:false answer.
type apiError struct {
	Method      string
	Status      int // HTTP status, normally equal to error_code
	Description string
	RetryAfter  int   // seconds, with 429
	MigrateTo   int64 // the supergroup a group became, with 400
}

func (e *apiError) Error() string {
	return fmt.Sprintf("telegram %s: %d %s", e.Method, e.Status, e.Description)
}

// envelope is every Bot API answer.
type envelope struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter      int   `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// call invokes method with params encoded as JSON and decodes the result
// into result (when non-nil). Failures are *apiError for Telegram's answers
// and plain wrapped errors for transport problems.
func (b *botAPI) call(ctx context.Context, method string, params, result any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("telegram %s: encode: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("telegram %s: %w", method, redact(err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		return fmt.Errorf("telegram %s: %w", method, redact(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("telegram %s: read answer: %w", method, err)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		// Not the Bot API talking (a proxy's error page): the status is all we have.
		return &apiError{Method: method, Status: resp.StatusCode, Description: http.StatusText(resp.StatusCode)}
	}
	if !env.OK {
		return &apiError{
			Method: method, Status: resp.StatusCode, Description: env.Description,
			RetryAfter: env.Parameters.RetryAfter, MigrateTo: env.Parameters.MigrateToChatID,
		}
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(env.Result, result); err != nil {
		return fmt.Errorf("telegram %s: decode result: %w", method, err)
	}
	return nil
}

// redact drops the request URL, which carries the bot token, from transport
// errors.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
