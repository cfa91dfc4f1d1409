package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserPath finds Chromium: $SWITCHBOARD_CHROMIUM, else Debian's chromium
// or another Chrome on PATH.
func browserPath() string {
	if p := os.Getenv("SWITCHBOARD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// page is a headless Chromium tab; uncaught exceptions and console errors
// of its scripts fail the test.
type page struct {
	t   *testing.T
	ctx context.Context
}

func newPage(t *testing.T) *page {
	t.Helper()
	path := browserPath()
	if path == "" {
		t.Skip("no browser: install Debian's chromium (scripts/test-deps.sh does) or set SWITCHBOARD_CHROMIUM")
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first call starts the browser, on a context without timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// The demo bot's image URLs do not resolve offline: the
			// browser's network log is not the widget's fault.
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("browser console: %s", p)
		}
	})
	return &page{t: t, ctx: ctx}
}

// do runs actions, failing with the chat's text on error.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		log, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`(document.querySelector('.sbw-log')||document.body).innerText`))
		p.t.Fatalf("%s: %v\nchat so far:\n%s", what, err, log)
	}
}

// waitBot waits until a bot message (or card) contains text.
func (p *page) waitBot(text string) {
	p.t.Helper()
	p.do("wait for "+text, chromedp.Poll[chromedp.Void](fmt.Sprintf(
		`Array.from(document.querySelectorAll('.sbw-bot, .sbw-card')).some(e => e.textContent.includes(%q))`, text),
		chromedp.WithPollingTimeout(20*time.Second)))
}

// click clicks the newest button with that payload, once there is one.
func (p *page) click(payload string) {
	p.t.Helper()
	sel := fmt.Sprintf(`.sbw-btn[data-payload=%q]`, payload)
	p.do("click "+payload,
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`!!document.querySelector(%q)`, sel), chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).pop().click()`, sel)))
}

// count counts bot messages containing text.
func (p *page) count(text string) int {
	p.t.Helper()
	n, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](fmt.Sprintf(
		`Array.from(document.querySelectorAll('.sbw-bot')).filter(e => e.textContent.includes(%q)).length`, text)))
	if err != nil {
		p.t.Fatal(err)
	}
	return n
}

func TestWebchatInABrowser(t *testing.T) {
	t.Parallel()
	p := newPage(t)
	e := webchatEnv(t)

	p.do("open the demo page", chromedp.Navigate(e.g.URL+"/channels/demo-web/"))
	p.waitBot("Hi! I'm the Switchboard demo bot")
	p.waitBot("What would you like to do?")
	p.do("online", chromedp.Poll[chromedp.Void](`document.querySelector('.sbw-status').dataset.state === 'online'`))

	// A card, then the menu again. The demo loads nothing from off the
	// machine.
	p.click("card")
	p.waitBot("One gateway, every channel")
	p.do("card without image", chromedp.Poll[chromedp.Void](`!!document.querySelector('.sbw-card') && !document.querySelector('.sbw-card img')`))

	// Buttons and typed text.
	p.click("name")
	p.waitBot("What's your name?")
	p.do("type a name", chromedp.SendKeys(chromedp.CSS("#sbw-input"), "bob\r"))
	p.waitBot("Nice to meet you, Bob!")
	p.do("sent", chromedp.Poll[chromedp.Void](`document.querySelectorAll('.sbw-user.sbw-sending').length === 0 &&
		Array.from(document.querySelectorAll('.sbw-user')).some(e => e.textContent === 'bob')`))

	// A broadcast reaches the open page.
	user, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`window.SwitchboardWidget.state().userId`))
	if err != nil || !strings.HasPrefix(user, "anon-") {
		t.Fatalf("widget user %q: %v", user, err)
	}
	id := e.broadcast(t, user, "reminder", `{"title":"the browser test"}`)
	p.waitBot("Reminder: the browser test.")
	p.waitBot("Will you make it?")
	p.click("yes")
	p.waitBot("Great, see you soon!")
	broadcastMessages(t, e, id, func(ms []map[string]any) bool { return every(ms, "delivered", "") })

	// The connection drops; a broadcast sent meanwhile arrives once the
	// widget has reconnected, once.
	p.do("drop", chromedp.Evaluate[chromedp.Void](`window.SwitchboardWidget.reconnect()`))
	p.do("reconnecting", chromedp.Poll[chromedp.Void](`document.querySelector('.sbw-status').dataset.state === 'reconnecting'`))
	e.broadcast(t, user, "reminder", `{"title":"after the reconnect"}`)
	p.waitBot("Reminder: after the reconnect.")
	p.do("online again", chromedp.Poll[chromedp.Void](`document.querySelector('.sbw-status').dataset.state === 'online'`))
	time.Sleep(300 * time.Millisecond)
	for _, text := range []string{"Reminder: after the reconnect.", "Reminder: the browser test.", "Nice to meet you, Bob!"} {
		if n := p.count(text); n != 1 {
			t.Errorf("%q shown %d times, want once", text, n)
		}
	}

	// ?ref= starts a flow and ?metadata= reaches it.
	p.do("open with ref", chromedp.Navigate(e.g.URL+"/channels/demo-web/?ref=reminder&metadata="+
		url.QueryEscape(`{"title":"the ref link"}`)))
	p.waitBot("Reminder: the ref link.")
}

// TestWebchatFloatingWidgetCloses embeds the widget as a floating button
// (on the demo page's origin, which the channel allows): the launcher is
// an inline icon, not an emoji, and closes the open panel, then opens it.
func TestWebchatFloatingWidgetCloses(t *testing.T) {
	t.Parallel()
	p := newPage(t)
	e := webchatEnv(t)
	p.do("open the demo page", chromedp.Navigate(e.g.URL+"/channels/demo-web/"))
	p.do("add a floating widget", chromedp.Evaluate[chromedp.Void](`(() => {
		const s = document.createElement('script');
		s.src = 'widget.js';
		s.dataset.forceOpen = '';
		document.body.appendChild(s);
	})()`))
	const panel = `getComputedStyle(document.querySelector('.sbw-floating .sbw-panel')).display`
	p.do("floating widget open", chromedp.Poll[chromedp.Void](`!!document.querySelector('.sbw-launcher') && `+panel+` === 'flex'`))
	icon, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](`(() => {
		const l = document.querySelector('.sbw-launcher');
		return !!l.querySelector('svg') && l.textContent.trim() === '';
	})()`))
	if err != nil || !icon {
		t.Fatalf("launcher: an inline svg and no text wanted (%v)", err)
	}
	p.do("close", chromedp.Evaluate[chromedp.Void](`document.querySelector('.sbw-launcher').click()`),
		chromedp.Poll[chromedp.Void](panel+` === 'none' && document.querySelector('.sbw-launcher').getAttribute('aria-label') === 'Open chat'`))
	p.do("open again", chromedp.Evaluate[chromedp.Void](`document.querySelector('.sbw-launcher').click()`),
		chromedp.Poll[chromedp.Void](panel+` === 'flex'`))
}
