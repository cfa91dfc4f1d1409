package apply_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/gateway/apply"
	"github.com/switchboard-gw/switchboard/gateway/store"
	"github.com/switchboard-gw/switchboard/gateway/store/sqlstore"
)

const audienceDoc = demo + `
  - id: ann
    attributes: {likes_baseball: true}
segments:
  - name: vip
    members: [wiley]
  - name: fans
    filter:
      or:
        - segment: {name: vip}
        - attribute: {field: likes_baseball, operator: eq, value: true}
broadcasts:
  - name: news
    active: true
    recipients: {segment: {name: fans}}
    actions:
      - type: message
        channel: hook
        to: "{{ customer.email }}"
        message: {text: "Hi {{ customer.first_name | default: 'there' }}: {{ trigger.headline }}"}
    goal: {type: event, event: purchase, within: 72h}
`

func TestApplySegmentsAndBroadcasts(t *testing.T) {
	t.Parallel()
	st := sqlstore.OpenTest(t)
	ctx := context.Background()
	out, err := run(t, st, audienceDoc, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"segment vip (id 1): created", "segment fans (id 2): created",
		"broadcast news (id 1, active): created; trigger with POST /v1/campaigns/1/triggers"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	n, err := st.CountRecipients(ctx, "acme", &store.Filter{Segment: &store.SegmentRef{ID: 2}})
	if err != nil || n != 2 {
		t.Fatalf("fans = %d (%v), want wiley (vip member) and ann (attribute)", n, err)
	}
	b, err := st.GetBroadcastByName(ctx, "acme", "news")
	if err != nil {
		t.Fatal(err)
	}
	if !b.Active || b.Actions[0].Channel != "acme-hook" || b.Actions[0].To != "{{ customer.email }}" || b.Recipients.Segment.ID != 2 || b.Goal.Event != "purchase" {
		t.Fatalf("broadcast = %+v, want active, channel by id, its to:, segment by id, the goal", b)
	}

	// Applying again updates in place what changed.
	out, err = run(t, st, strings.Replace(audienceDoc, "active: true", "active: false", 1), false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "broadcast news (id 1, inactive): updated") || !strings.Contains(out, "segment fans (id 2): unchanged") {
		t.Fatalf("second apply:\n%s", out)
	}
}

func TestApplyAudienceProblemsWriteNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, from, to, want string }{
		{"broken Liquid in an active broadcast", "{{ trigger.headline }}", "{{ trigger.headline | nofilter }}", "needs fixing: /actions/0/message/text: broken Liquid"},
		{"broken Liquid in to:", "{{ customer.email }}", "{{ customer.email | nofilter }}", "needs fixing: /actions/0/to: broken Liquid"},
		{"unknown segment name", "segment: {name: fans}", "segment: {name: nobody}", `broadcasts[0]: no segment named "nobody"`},
		{"unknown member", "members: [wiley]", "members: [wiley, ghost]", "segments[0]: members: no person ghost"},
		{"unknown channel", "channel: hook\n        to", "channel: nope\n        to", `unknown channel "nope"`},
		{"bad filter", "operator: eq, value: true", "operator: gt, value: true", "operator must be eq or exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := sqlstore.OpenTest(t)
			_, err := run(t, st, strings.Replace(audienceDoc, tc.from, tc.to, 1), false)
			var probs apply.Problems
			if !errors.As(err, &probs) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a problem containing %q", err, tc.want)
			}
			if _, err := st.GetWorkspace(context.Background(), "acme"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a failed apply wrote the workspace: %v", err)
			}
		})
	}
}
