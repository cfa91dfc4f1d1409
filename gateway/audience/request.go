package audience

import (
	"bytes"
	"encoding/json"
	"maps"
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

// ParseTriggerRequest decodes and checks a trigger body.
func ParseTriggerRequest(body []byte, lim Limits) (*TriggerRequest, error) {
	lim.defaults()
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return nil, &FieldError{Status: http.StatusBadRequest, Code: "bad_request", Detail: "bad request: the body must be a JSON object"}
	}
	var sources []string
	for _, f := range sourceFields {
		if _, ok := fields[f]; ok {
			sources = append(sources, f)
		}
	}
	if len(sources) > 1 {
		return nil, badField("/"+sources[1], "give at most one recipient source (%s); this request has %s",
			strings.Join(sourceFields, ", "), strings.Join(sources, " and "))
	}
	req := &TriggerRequest{}
	for _, key := range slices.Sorted(maps.Keys(fields)) {
		raw := fields[key]
		ptr := "/" + key
		var err error
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
		case "per_user_data":
			req.PerUserData, err = decodeUserData(raw, ptr, lim.MaxListItems)
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
	return req, nil
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

func decodeUserData(raw json.RawMessage, ptr string, maxItems int) ([]UserData, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, badField(ptr, "must be an array of {id|email, data} objects")
	}
	if len(items) == 0 {
		return nil, badField(ptr, "must not be empty")
	}
	if len(items) > maxItems {
		return nil, badField(ptr, "has %d items, the limit is %d", len(items), maxItems)
	}
	out := make([]UserData, len(items))
	for i, item := range items {
		at := ptr + "/" + strconv.Itoa(i)
		u, msg := parseUserData(item)
		if msg != "" {
			return nil, badField(at, "%s", msg)
		}
		out[i] = u
	}
	return out, nil
}

// parseUserData checks one {id|email, data} object; it returns a message
// instead of an error so data file lines can report it with their number.
func parseUserData(raw []byte) (UserData, string) {
	var u UserData
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		return u, "must be an object with id or email, and data: " + err.Error()
	}
	switch {
	case u.ID != "" && u.Email != "":
		return u, "give id or email, not both"
	case u.ID != "":
		if msg := checkID(u.ID); msg != "" {
			return u, msg
		}
	case u.Email != "":
		if msg := checkEmail(u.Email); msg != "" {
			return u, msg
		}
	default:
		return u, "id or email is required"
	}
	return u, ""
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
