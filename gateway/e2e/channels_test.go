package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/gateway/config"
	"github.com/switchboard-gw/switchboard/gateway/internal/gatewaytest"
	"github.com/switchboard-gw/switchboard/gateway/pluginhost"
	"github.com/switchboard-gw/switchboard/gateway/store"
)

// The channel tests run the Slack, Twilio and Telegram plugin binaries
// behind a real gateway against their platforms' local fakes, with the
// channels as configs/examples defines them and the demo bot.

type platform struct {
	name string
	// fake starts the platform's fake. interval is the platform's limit:
	// the least time between two messages to one conversation (a Slack
	// channel, a Telegram chat) or, on Twilio, from one sender; zero is the
	// fake's default of one second.
	fake func(t *testing.T, interval time.Duration) chatFake
}

var platforms = []platform{
	{"slack", newSlackChat},
	{"twilio", newTwilioChat},
	{"telegram", newTelegramChat},
}

// forEachPlatform runs test for each platform, in parallel.
func forEachPlatform(t *testing.T, test func(t *testing.T, p platform)) {
	t.Parallel()
	for _, p := range platforms {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			test(t, p)
		})
	}
}

// channelEnv is a gateway serving one platform's channel, with a channel key
// for the CSML APIs.
type channelEnv struct {
	csmlEnv
	fake          chatFake
	name, channel string // the channel's name and id
}

// setup varies startChannel.
type setup struct {
	interval  time.Duration // the platform's limit (see platform.fake)
	configure func(*config.Config)
}

// startChannel runs a gateway with p's plugin, the demo workspace and p's
// example channel.
func startChannel(t *testing.T, p platform, s setup) channelEnv {
	t.Helper()
	f := p.fake(t, s.interval)
	g := gatewaytest.Start(t, gatewaytest.Options{Plugins: []string{p.name}, Configure: s.configure})
	// The demo workspace's webhook channel stays unused: its plugin is not
	// loaded.
	g.Apply(t, demoWorkspace(t, "http://127.0.0.1:9/sink"))
	g.Apply(t, f.channel(t))
	name, id := f.names()
	waitConfigured(t, g, id)
	f.connect(t, g.Config.PublicURL+"/channels/"+id+"/webhook")
	return channelEnv{
		csmlEnv: csmlEnv{g: g, key: gatewaytest.NewKey(t, g.Store, "demo", store.ScopeChannel, id)},
		fake:    f, name: name, channel: id,
	}
}

// instance returns the plugin host's view of a channel.
func instance(g *gatewaytest.Gateway, channelID string) (pluginhost.InstanceStatus, bool) {
	for _, p := range g.App.Host.Status() {
		for _, in := range p.Instances {
			if in.ChannelID == channelID {
				return in, true
			}
		}
	}
	return pluginhost.InstanceStatus{}, false
}

// waitConfigured waits until the plugin accepted the channel's config.
func waitConfigured(t *testing.T, g *gatewaytest.Gateway, channelID string) {
	t.Helper()
	eventually(t, 10*time.Second, func() string {
		if in, ok := instance(g, channelID); !ok || !in.Healthy {
			return fmt.Sprintf("channel %s is not configured: %+v", channelID, in)
		}
		return ""
	})
}

// eventually polls cond until it returns "" and fails with its last
// answer after timeout.
func eventually(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deliver posts ev and expects the platform's success answer.
func deliver(t *testing.T, ev platformEvent) {
	t.Helper()
	if status := ev.post(t); status != http.StatusOK {
		t.Fatalf("platform event %s: gateway answered %d", ev.id, status)
	}
}

// await waits until user received n messages and returns them.
func (e channelEnv) await(t *testing.T, user string, n int) []string {
	t.Helper()
	var got []string
	eventually(t, 15*time.Second, func() string {
		if got = e.fake.received(user); len(got) < n {
			return fmt.Sprintf("%s received %d messages, want %d: %q", user, len(got), n, got)
		}
		return ""
	})
	return got
}

// trigger starts flow for user through the CSML Broadcasts API and returns
// the request id.
func (e channelEnv) trigger(t *testing.T, user, flow, metadata string) string {
	t.Helper()
	body := fmt.Sprintf(`{"payload":{"content_type":"flow_trigger","content":{"flow_id":%q}},"client":{"user_id":%q},"metadata":%s}`,
		flow, user, metadata)
	code, out, _ := e.do(t, "POST", "/v1/api/broadcasts", e.key, body)
	if code != http.StatusOK {
		t.Fatalf("broadcast to %s: %d %v", user, code, out)
	}
	return out["request_id"].(string)
}

// reminder is what the demo bot's reminder flow sends with title "the
// dentist".
var reminder = []string{"Reminder: the dentist.", "Will you make it?"}

const reminderMetadata = `{"title":"the dentist"}`

// sameStart reports whether got begins with the want prefixes, one each.
func sameStart(got, want []string) bool {
	if len(got) < len(want) {
		return false
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			return false
		}
	}
	return true
}

// A user's message gets the bot's reply; the platform's retry of that
// message changes nothing; a button click continues the flow.
//
// The platform's limit is stricter than the plugin declares (1.5 s rather
// than 1 s between two messages to a chat), as real limits sometimes are:
// the second message of each reply gets a 429, and the gateway must wait
// out its retry-after.
func TestChannelConversation(t *testing.T) {
	forEachPlatform(t, func(t *testing.T, p platform) {
		e := startChannel(t, p, setup{interval: 1500 * time.Millisecond})
		user := e.fake.user(1)
		hi := e.fake.message(user, "hi")
		deliver(t, hi)
		got := e.await(t, user, 2)
		if !strings.Contains(got[0], "I'm the Switchboard demo bot.") || !strings.HasPrefix(got[1], "What would you like to do?") {
			t.Fatalf("first replies %q, want the greeting and the menu", got)
		}
		// The platform did not see our answer in time and retries.
		if status := hi.redeliver(t); status != http.StatusOK {
			t.Fatalf("redelivery: gateway answered %d", status)
		}
		deliver(t, e.fake.click(t, user, "Tell me your name", "name"))
		// One user's events are processed in order, so a reply to the
		// redelivery would have come before this one.
		got = e.await(t, user, 3)
		if want := []string{"Hi", "What would you like to do?", "What's your name?"}; !sameStart(got, want) || len(got) != 3 {
			t.Fatalf("after the click: %q, want %q (the redelivered message answered once)", got, want)
		}
		deliver(t, e.fake.message(user, "  ada "))
		got = e.await(t, user, 5)
		if got[3] != "Nice to meet you, Ada!" || !strings.HasPrefix(got[4], "Anything else?") || len(got) != 5 {
			t.Fatalf("conversation %q", got)
		}
		if n := e.fake.limited(); n == 0 {
			t.Error("the platform never answered 429: the retry-after path went untested")
		} else {
			t.Logf("%s: the platform answered 429 %d times", p.name, n)
		}
		if early := e.fake.early(); len(early) > 0 {
			t.Errorf("%d sends came before the platform's retry-after: %v", len(early), early)
		}
	})
}

// A flow_trigger broadcast reaches a user who never wrote (Slack opens the
// DM, Twilio texts the number) or who wrote before (Telegram, where bots
// cannot start conversations); a user the platform refuses is reported
// unreachable with its reason, which is no API error.
func TestChannelProactive(t *testing.T) {
	forEachPlatform(t, func(t *testing.T, p platform) {
		e := startChannel(t, p, setup{})
		user, gone := e.fake.user(7), e.fake.user(8)
		if p.name == "telegram" {
			for _, u := range []string{user, gone} {
				deliver(t, e.fake.message(u, "/start"))
				e.await(t, u, 2)
			}
		}
		before := len(e.fake.received(user))
		id := e.trigger(t, user, "reminder", reminderMetadata)
		got := e.await(t, user, before+2)[before:]
		if !sameStart(got, reminder) {
			t.Fatalf("%s received %q, want %q", user, got, reminder)
		}
		res := e.result(t, id, "delivered")
		if msgs := res["messages"].([]any); len(msgs) != 2 {
			t.Fatalf("result %v, want 2 messages", res)
		}
		if s, ok := e.fake.(*slackChat); ok {
			opened := false
			for _, c := range s.srv.Calls("conversations.open") {
				opened = opened || c.Args.Get("users") == user
			}
			if !opened {
				t.Fatalf("slack: no conversations.open for %s", user)
			}
		}

		reason := e.fake.block(gone)
		res = e.result(t, e.trigger(t, gone, "reminder", reminderMetadata), "unreachable")
		if res["reason"] != reason {
			t.Fatalf("result for a user the platform refuses: %v, want reason %s", res, reason)
		}
	})
}

// Platform retries and replays of one event are answered once: Slack's
// X-Slack-Retry-Num with the same event_id, Twilio's same MessageSid,
// Telegram's same update_id, each delivered twice more.
func TestChannelRetriedEventsAreAnsweredOnce(t *testing.T) {
	forEachPlatform(t, func(t *testing.T, p platform) {
		e := startChannel(t, p, setup{})
		user := e.fake.user(2)
		hi := e.fake.message(user, "hi")
		// Concurrently, as a platform that timed out while the first
		// request was still being processed.
		var wg sync.WaitGroup
		statuses := make([]int, 3)
		for i, post := range []func(*testing.T) int{hi.post, hi.redeliver, hi.redeliver} {
			wg.Go(func() { statuses[i] = post(t) })
		}
		wg.Wait()
		for _, s := range statuses {
			if s != http.StatusOK {
				t.Fatalf("deliveries of one event answered %v, want 200 each", statuses)
			}
		}
		e.await(t, user, 2)
		// One user's events are processed in order: a duplicate "hi",
		// answering the menu, would get its retry prompt before the
		// click's reply.
		deliver(t, e.fake.click(t, user, "Tell me your name", "name"))
		got := e.await(t, user, 3)
		if !sameStart(got, []string{"Hi", "What would you like to do?", "What's your name?"}) {
			t.Fatalf("%s received %q: the event was answered more than once", user, got)
		}
	})
}

// Requests with a bad, missing or stale signature are refused, signed
// requests that carry no event are answered 400, and nothing of them is
// processed.
func TestChannelRefusesForgedWebhooks(t *testing.T) {
	forEachPlatform(t, func(t *testing.T, p platform) {
		e := startChannel(t, p, setup{})
		user := e.fake.user(3)
		forged := e.fake.message(user, "hi from an attacker")
		for _, f := range forged.forged {
			if status := f.post(t); status != http.StatusUnauthorized && status != http.StatusForbidden {
				t.Errorf("%s: gateway answered %d, want 401 or 403", f.name, status)
			}
		}
		if m := e.fake.malformed(); m.post(t) != http.StatusBadRequest {
			t.Errorf("%s: gateway did not answer 400", m.name)
		}
		first, err := e.g.Store.MarkEventSeen(context.Background(), e.channel, "in:"+e.channel+":"+forged.id, time.Now())
		if err != nil || !first {
			t.Fatalf("a refused event was recorded (first=%v, %v)", first, err)
		}
		// Had a forged request been processed, its replies would come
		// first.
		deliver(t, e.fake.message(user, "hi"))
		if got := e.await(t, user, 2); len(got) != 2 || !strings.HasPrefix(got[0], "Hi") {
			t.Fatalf("%s received %q, want only the replies to the genuine message", user, got)
		}
	})
}

// A revoked token turns the channel's health degraded with the platform's
// error, and sends wait as auth errors instead of failing.
func TestChannelRevokedToken(t *testing.T) {
	forEachPlatform(t, func(t *testing.T, p platform) {
		e := startChannel(t, p, setup{})
		reason := e.fake.revoke()
		eventually(t, 10*time.Second, func() string {
			if in, _ := instance(e.g, e.channel); in.Healthy || !strings.Contains(in.Reason, reason) {
				return fmt.Sprintf("channel health %+v, want unhealthy with %q", in, reason)
			}
			return ""
		})
		res := e.result(t, e.trigger(t, e.fake.user(4), "reminder", reminderMetadata), "retrying")
		if res["reason"] != "auth_error" {
			t.Fatalf("result with a revoked token: %v, want retrying with auth_error", res)
		}
	})
}

// During a platform outage (5xx) deliveries are retrying with the last
// error, and they go out once the platform recovers.
func TestChannelOutage(t *testing.T) {
	forEachPlatform(t, func(t *testing.T, p platform) {
		e := startChannel(t, p, setup{})
		user := e.fake.user(5)
		if p.name == "telegram" {
			deliver(t, e.fake.message(user, "/start"))
			e.await(t, user, 2)
		}
		before := len(e.fake.received(user))
		e.fake.outage(2)
		id := e.trigger(t, user, "reminder", reminderMetadata)
		res := e.result(t, id, "retrying")
		msgs := res["messages"].([]any)
		if last, _ := msgs[0].(map[string]any)["error"].(string); res["reason"] != "transient_error" || !strings.Contains(last, "http_50") {
			t.Fatalf("result during the outage: %v, want retrying with transient_error and the platform's 5xx", res)
		}
		e.result(t, id, "delivered")
		if got := e.fake.received(user)[before:]; len(got) != 2 || !sameStart(got, reminder) {
			t.Fatalf("after the outage %s received %q, want %q once", user, got, reminder)
		}
	})
}

// Twilio's StatusCallbacks, signed like its webhooks, move a broadcast's
// deliveries on: delivered, or undelivered with the carrier's error code.
func TestTwilioDeliveryReceipts(t *testing.T) {
	t.Parallel()
	e := startChannel(t, platform{"twilio", newTwilioChat}, setup{})
	tw := e.fake.(*twilioChat)
	id := e.trigger(t, e.fake.user(6), "reminder", reminderMetadata)
	e.result(t, id, "delivered")
	sms := tw.srv.Messages()
	if len(sms) != 2 || !strings.HasSuffix(sms[0].StatusCallback, "/channels/demo-sms/webhook?sb_event=status") {
		t.Fatalf("Twilio got %+v, want the reminder's 2 messages with the channel's StatusCallback", sms)
	}
	for _, r := range []struct {
		sid, status string
		code        int
	}{{sms[0].SID, "sent", 0}, {sms[0].SID, "delivered", 0}, {sms[0].SID, "sent", 0}, {sms[1].SID, "undelivered", 30003}} {
		resp, err := tw.srv.SendStatus(context.Background(), r.sid, r.status, r.code)
		if statusOf(t, resp.Status, err) != http.StatusOK {
			t.Fatalf("StatusCallback %s %s: gateway answered %d", r.sid, r.status, resp.Status)
		}
	}
	// A late "sent" does not undo "delivered".
	res := e.result(t, id, "failed")
	msgs := res["messages"].([]any)
	first, second := msgs[0].(map[string]any), msgs[1].(map[string]any)
	if first["status"] != "delivered" || first["delivered_at"] == nil || second["status"] != "failed" ||
		second["reason"] != "channel_rejected:30003" || res["reason"] != "channel_rejected:30003" {
		t.Fatalf("result after the receipts: %v", res)
	}
}

// groupSize is how many users a fan-out reaches.
const groupSize = 50

// A group trigger (the Customer.io-compatible API) reaches every one of
// many users exactly once, and no send comes before a retry-after the
// platform gave.
func TestChannelFanOut(t *testing.T) {
	forEachPlatform(t, func(t *testing.T, p platform) {
		e := startChannel(t, p, setup{configure: func(c *config.Config) {
			c.API.KeyRateLimit = 1000
			noTriggerInterval(c)
		}})
		cio := newCIO(t, e.g, "demo")
		users := make([]string, groupSize)
		ids := make([]string, groupSize)
		want := map[string]string{}
		for i := range users {
			users[i], ids[i] = e.fake.user(1000+i), fmt.Sprintf("person-%d", i)
			want[users[i]] = fmt.Sprintf("Hi %d, your order shipped", i)
			cio.identify(ids[i], map[string]any{"first_name": i, "_identities": map[string]string{e.name: users[i]}})
		}
		news := cio.broadcast(map[string]any{"name": "shipping", "recipients": named, "actions": []any{map[string]any{
			"type": "message", "channel": e.name,
			"message": map[string]any{"type": "text", "text": "Hi {{ customer.first_name }}, {{ trigger.news }}"},
		}}})
		start := time.Now()
		trigger := cio.trigger(news, map[string]any{"ids": ids, "data": map[string]any{"news": "your order shipped"}})
		eventually(t, 3*time.Minute, func() string {
			for _, u := range users {
				if len(e.fake.received(u)) == 0 {
					return fmt.Sprintf("%s has received nothing", u)
				}
			}
			return ""
		})
		took := time.Since(start)
		for _, u := range users {
			if got := e.fake.received(u); len(got) != 1 || got[0] != want[u] {
				t.Errorf("%s received %q, want %q once", u, got, want[u])
			}
		}
		st := cio.wait(news, trigger)
		if sent := st["counts"].(map[string]any)["sent"]; sent != float64(groupSize) {
			t.Errorf("trigger counts %v, want %d sent", st["counts"], groupSize)
		}
		if early := e.fake.early(); len(early) > 0 {
			t.Errorf("%d sends came before the platform's retry-after: %v", len(early), early)
		}
		t.Logf("%s: %d users reached in %s; the platform answered 429 %d times", p.name, len(users), took.Round(100*time.Millisecond), e.fake.limited())
	})
}
