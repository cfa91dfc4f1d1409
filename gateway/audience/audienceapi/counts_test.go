package audienceapi

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/audience"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// TestTriggerCountsPerAction is item 5 of issue 13: a trigger's actions
// each count the recipients they were performed for and, for an attributes
// action, the people updated, as the top level does.
func TestTriggerCountsPerAction(t *testing.T) {
	ctx := context.Background()
	a := newTestAPI(t, Options{})
	engine := audience.NewEngine(a.st, audience.EngineOptions{})
	if _, err := a.st.UpsertPerson(ctx, store.Person{WorkspaceID: "w", ID: "q"}); err != nil {
		t.Fatal(err)
	}
	status, _, out := a.do(http.MethodPost, fmt.Sprintf("/v1/campaigns/%d/triggers", a.bc), map[string]any{"ids": []string{"p", "q"}})
	if status != http.StatusOK {
		t.Fatalf("trigger: %d %v", status, out)
	}
	id := int64(out["id"].(float64))
	jobs, err := a.st.ClaimJobs(ctx, store.JobClaimOptions{Node: "n", Limit: 10, Now: time.Now()})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim the fan-out job: %v %v", jobs, err)
	}
	if err := engine.Run(ctx, jobs[0]); err != nil {
		t.Fatal(err)
	}

	status, _, out = a.do(http.MethodGet, fmt.Sprintf("/v1/campaigns/%d/triggers/%d", a.bc, id), nil)
	if status != http.StatusOK {
		t.Fatalf("trigger status: %d %v", status, out)
	}
	top := out["counts"].(map[string]any)
	if top["matched"] != 2.0 || top["attributes_updated"] != 2.0 {
		t.Fatalf("counts = %v, want 2 matched and 2 updated", top)
	}
	actions := out["actions"].([]any)
	if len(actions) != 1 {
		t.Fatalf("actions = %v, want the broadcast's one", actions)
	}
	if act := actions[0].(map[string]any); act["type"] != "attributes" || act["matched"] != 2.0 || act["attributes_updated"] != 2.0 {
		t.Fatalf("action 0 = %v, want 2 matched and 2 updated", act)
	}

	status, _, out = a.do(http.MethodGet, fmt.Sprintf("/v1/broadcasts/%d/metrics", a.bc), nil)
	if status != http.StatusOK {
		t.Fatalf("metrics: %d %v", status, out)
	}
	if act := out["metric"].(map[string]any)["actions"].([]any)[0].(map[string]any); act["matched"] != 2.0 || act["attributes_updated"] != 2.0 {
		t.Fatalf("metrics action 0 = %v, want 2 matched and 2 updated", act)
	}
}
