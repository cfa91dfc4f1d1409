package adminapi_test

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/switchboard-gw/switchboard/gateway/adminapi"
)

// TestOpenAPIDocumentsEveryRoute: every admin route is in the served
// openapi.yaml with an operationId, a 2xx schema, and its 401 and 429.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	raw, err := os.ReadFile("../httpapi/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type operation struct {
		OperationID string                    `yaml:"operationId"`
		Responses   map[string]map[string]any `yaml:"responses"`
	}
	var doc struct {
		// A path holds operations by method, and its parameters.
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	ids := map[string]string{}
	for _, r := range adminapi.NewAPI(adminapi.HTTPOptions{}).Routes() {
		method, path, _ := strings.Cut(r.Pattern, " ")
		node, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Errorf("%s is not in openapi.yaml", r.Pattern)
			continue
		}
		var op operation
		if err := node.Decode(&op); err != nil {
			t.Fatalf("%s: %v", r.Pattern, err)
		}
		if op.OperationID == "" {
			t.Errorf("%s has no operationId", r.Pattern)
		} else if other, dup := ids[op.OperationID]; dup {
			t.Errorf("%s and %s share operationId %s", r.Pattern, other, op.OperationID)
		}
		ids[op.OperationID] = r.Pattern
		for _, code := range []string{"401", "429"} {
			if _, ok := op.Responses[code]; !ok {
				t.Errorf("%s does not document %s", r.Pattern, code)
			}
		}
		documented := false
		for code, resp := range op.Responses {
			if strings.HasPrefix(code, "2") && resp["content"] != nil {
				documented = true
			}
		}
		if !documented {
			t.Errorf("%s has no 2xx response with a schema", r.Pattern)
		}
	}
}
