package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// readBody reads a request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *APIError) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, Errf(http.StatusRequestEntityTooLarge, "body_too_large", "", "request body exceeds %d bytes", limit)
	case err != nil:
		return nil, Errf(http.StatusBadRequest, "bad_body", "", "read request body: %v", err)
	}
	return raw, nil
}

// decodeJSON decodes raw into v, turning JSON errors into an APIError that
// points at the offending field.
func decodeJSON(raw []byte, v any) *APIError {
	if len(raw) == 0 {
		return Errf(http.StatusBadRequest, "invalid_json", "", "request body is empty; send a JSON object")
	}
	err := json.Unmarshal(raw, v)
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		ptr := "/" + strings.ReplaceAll(te.Field, ".", "/")
		return Errf(http.StatusBadRequest, "invalid_field", ptr, "%s must be %s, not %s", ptr, jsonKind(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return Errf(http.StatusBadRequest, "invalid_json", "", "invalid JSON at byte %d: %v", se.Offset, err)
	default:
		return Errf(http.StatusBadRequest, "invalid_json", "", "invalid JSON: %v", err)
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	default:
		return "a number"
	}
}

// DecodeBody reads a JSON body of at most limit bytes into v, answering
// oversized, empty or malformed bodies with an *APIError naming the field.
func DecodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	raw, ae := readBody(w, r, limit)
	if ae == nil {
		ae = decodeJSON(raw, v)
	}
	if ae != nil {
		return ae
	}
	return nil
}
