package httpapi

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPIDocumentsEveryRoute keeps the served reference true: every
// route the CSML API mounts is in the document, and it parses.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(openAPISpec, &doc); err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	routes := (&CSML{}).Routes()
	routes = append(routes, Route{Pattern: "GET /healthz"}, Route{Pattern: "GET /readyz"}, Route{Pattern: "POST /channels/{channel_id}/webhook"})
	for _, r := range routes {
		method, path, _ := strings.Cut(r.Pattern, " ")
		ops, ok := doc.Paths[path]
		if !ok {
			t.Errorf("%s is not in openapi.yaml", path)
			continue
		}
		if _, ok := ops[strings.ToLower(method)]; !ok {
			t.Errorf("%s %s is not in openapi.yaml", method, path)
		}
	}
}
