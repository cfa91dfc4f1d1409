package webchat

import (
	"embed"
	"net/http"
)

// assets are the demo page and the widget, served from the binary: no CDN,
// no build step.
//
//go:embed assets/index.html assets/widget.js
var assets embed.FS

// pagePolicy is the demo page's Content-Security-Policy: its own script
// only; images from anywhere (bots send image URLs); the widget injects its
// stylesheet.
const pagePolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src * data:; " +
	"connect-src 'self' ws: wss:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"

// servePage serves GET /channels/{channel_id}/: a page with the widget
// inline, passing the page's ?ref= and ?metadata= to it.
func (s *Service) servePage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.socketChannel(w, r); !ok {
		return
	}
	w.Header().Set("Content-Security-Policy", pagePolicy)
	serveAsset(w, "assets/index.html", "text/html; charset=utf-8")
}

// serveWidget serves GET /channels/{channel_id}/widget.js, which any page
// embeds with one script tag.
func (s *Service) serveWidget(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.socketChannel(w, r); !ok {
		return
	}
	serveAsset(w, "assets/widget.js", "text/javascript; charset=utf-8")
}

func serveAsset(w http.ResponseWriter, name, contentType string) {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic("webchat: embedded asset missing: " + name) // the embed pattern lists it
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	// Revalidated on every load, so a new gateway version is picked up.
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}
