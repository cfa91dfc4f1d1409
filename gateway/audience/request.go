package audience

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/switchboard-gw/switchboard/gateway/store"
)

// Limits are the configurable bounds of triggers (Customer.io's by
// default).
type Limits struct {
	// MaxDataBytes caps the trigger's data object (default 50,000).
	MaxDataBytes int
	// MaxListItems caps ids, emails and per_user_data (default 10,000).
	MaxListItems int
	Filter       FilterLimits
}

func (l *Limits) defaults() {
	if l.MaxDataBytes <= 0 {
		l.MaxDataBytes = 50_000
	}
	if l.MaxListItems <= 0 {
		l.MaxListItems = 10_000
	}
	l.Filter.defaults()
}

// UserData is one per_user_data item or data file line: a person by id or
// email, and their data.
type UserData struct {
	ID    string         `json:"id,omitempty"`
	Email string         `json:"email,omitempty"`
	Data  map[string]any `json:"data,omitempty"`
}

// TriggerRequest is a validated trigger body. At most one recipient source
// is set; none means the broadcast's default recipients.
type TriggerRequest struct {
	Data               map[string]any `json:"data,omitempty"`
	Recipients         *store.Filter  `json:"recipients,omitempty"`
	IDs                []string       `json:"ids,omitempty"`
	Emails             []string       `json:"emails,omitempty"`
	PerUserData        []UserData     `json:"per_user_data,omitempty"`
	DataFileURL        string         `json:"data_file_url,omitempty"`
	IDIgnoreMissing    bool           `json:"id_ignore_missing,omitempty"`
	EmailIgnoreMissing bool           `json:"email_ignore_missing,omitempty"`
	EmailAddDuplicates bool           `json:"email_add_duplicates,omitempty"`
	// DryRun counts instead of sending; it is not stored.
	DryRun bool `json:"-"`
}

// sourceFields are the recipient sources, of which a trigger names at most
// one.
var sourceFields = []string{"recipients", "ids", "emails", "per_user_data", "data_file_url"}

// ParseTriggerRequest decodes and checks a trigger body, streaming: the
// body is never held whole, and per_user_data (which may be most of a
// 25 MB body) is decoded one item at a time, so a request costs about
// what it decodes to, not several copies of its bytes.
func ParseTriggerRequest(body io.Reader, lim Limits) (*TriggerRequest, error) {
	lim.defaults()
	dec := json.NewDecoder(body)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, badBody(err)
	}
	req := &TriggerRequest{}
	seen := map[string]bool{}
	source := ""
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, badBody(err)
		}
		key := tok.(string) // object keys are strings
		ptr := "/" + key
		if seen[key] {
			return nil, badField(ptr, "%s is given twice", key)
		}
		seen[key] = true
		if slices.Contains(sourceFields, key) {
			if source != "" {
				first, second := source, key
				if slices.Index(sourceFields, first) > slices.Index(sourceFields, second) {
					first, second = second, first
				}
				return nil, badField("/"+second, "give at most one recipient source (%s); this request has %s and %s",
					strings.Join(sourceFields, ", "), first, second)
			}
			source = key
		}
		if key == "per_user_data" {
			if req.PerUserData, err = streamUserData(dec, ptr, lim.MaxListItems); err != nil {
				return nil, err
			}
			continue
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, badBody(err)
		}
		switch key {
		case "data":
			if len(raw) > lim.MaxDataBytes {
				return nil, badField(ptr, "data is %d bytes, the limit is %d", len(raw), lim.MaxDataBytes)
			}
			req.Data, err = decodeObject(raw, ptr)
		case "recipients":
			req.Recipients, err = ParseFilter(raw, ptr, lim.Filter)
		case "ids":
			req.IDs, err = decodeStrings(raw, ptr, lim.MaxListItems, checkID)
		case "emails":
			req.Emails, err = decodeStrings(raw, ptr, lim.MaxListItems, checkEmail)
		case "data_file_url":
			req.DataFileURL, err = decodeURL(raw, ptr)
		case "id_ignore_missing":
			err = decodeBool(raw, ptr, &req.IDIgnoreMissing)
		case "email_ignore_missing":
			err = decodeBool(raw, ptr, &req.EmailIgnoreMissing)
		case "email_add_duplicates":
			err = decodeBool(raw, ptr, &req.EmailAddDuplicates)
		case "dry_run":
			err = decodeBool(raw, ptr, &req.DryRun)
		default:
			err = badField(ptr, "unknown field %q", key)
		}
		if err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, badBody(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &FieldError{Status: http.StatusBadRequest, Code: "bad_request", Detail: "bad request: the body must be one JSON object, with nothing after it"}
	}
	return req, nil
}

// badBody answers a body that does not decode; a body over the size
// limit keeps its own error (413).
func badBody(err error) error {
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return err
	}
	return &FieldError{Status: http.StatusBadRequest, Code: "bad_request", Detail: "bad request: the body must be a JSON object"}
}

// streamUserData decodes per_user_data item by item from dec, straight
// into UserData: no copy of an item's bytes is made.
func streamUserData(dec *json.Decoder, ptr string, maxItems int) ([]UserData, error) {
	shape := badField(ptr, "must be an array of {id|email, data} objects")
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, shape
	}
	dec.DisallowUnknownFields() // only UserData is decoded as a struct
	var out []UserData
	for dec.More() {
		if len(out) == maxItems {
			return nil, badField(ptr, "has more than %d items, the limit is %d", maxItems, maxItems)
		}
		at := ptr + "/" + strconv.Itoa(len(out))
		var u UserData
		if err := dec.Decode(&u); err != nil {
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				return nil, err
			}
			return nil, badField(at, "%s", userDataShape+err.Error())
		}
		if msg := checkUserData(u); msg != "" {
			return nil, badField(at, "%s", msg)
		}
		out = append(out, u)
	}
	if _, err := dec.Token(); err != nil {
		return nil, shape
	}
	if len(out) == 0 {
		return nil, badField(ptr, "must not be empty")
	}
	return out, nil
}

func decodeObject(raw json.RawMessage, ptr string) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, badField(ptr, "must be a JSON object")
	}
	return m, nil
}

func decodeBool(raw json.RawMessage, ptr string, dst *bool) error {
	if err := json.Unmarshal(raw, dst); err != nil {
		return badField(ptr, "must be true or false")
	}
	return nil
}

func decodeStrings(raw json.RawMessage, ptr string, maxItems int, check func(string) string) ([]string, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, badField(ptr, "must be an array of strings")
	}
	if len(items) == 0 {
		return nil, badField(ptr, "must not be empty")
	}
	if len(items) > maxItems {
		return nil, badField(ptr, "has %d items, the limit is %d", len(items), maxItems)
	}
	out := make([]string, len(items))
	for i, item := range items {
		at := ptr + "/" + strconv.Itoa(i)
		if err := json.Unmarshal(item, &out[i]); err != nil {
			return nil, badField(at, "must be a string")
		}
		if msg := check(out[i]); msg != "" {
			return nil, badField(at, "%s", msg)
		}
	}
	return out, nil
}

func checkID(s string) string {
	if strings.TrimSpace(s) == "" || len(s) > 150 {
		return "an id has 1 to 150 characters"
	}
	return ""
}

func checkEmail(s string) string {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || len(s) > 254 || strings.ContainsAny(s, " \t\r\n") {
		return "not an email address: " + strconv.Quote(s)
	}
	return ""
}

// parseUserData checks one {id|email, data} object; it returns a message
// instead of an error so data file lines can report it with their number.
func parseUserData(raw []byte) (UserData, string) {
	var u UserData
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		return u, userDataShape + err.Error()
	}
	return u, checkUserData(u)
}

const userDataShape = "must be an object with id or email, and data: "

// checkUserData checks a decoded item names one person.
func checkUserData(u UserData) string {
	switch {
	case u.ID != "" && u.Email != "":
		return "give id or email, not both"
	case u.ID != "":
		return checkID(u.ID)
	case u.Email != "":
		return checkEmail(u.Email)
	}
	return "id or email is required"
}

func decodeURL(raw json.RawMessage, ptr string) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", badField(ptr, "must be a URL string")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", badField(ptr, "must be an http or https URL")
	}
	return s, nil
}

// triggerData merges per-person data over the trigger's data: what
// templates see as trigger.*.
func triggerData(common, person map[string]any) map[string]any {
	if len(person) == 0 {
		return common
	}
	out := make(map[string]any, len(common)+len(person))
	for k, v := range common {
		out[k] = v
	}
	for k, v := range person {
		out[k] = v
	}
	return out
}
