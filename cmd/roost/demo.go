package main

import (
	_ "embed"
	"net/http"
)

// demoPage is the demo page: one file, no external assets, no build step.
//
//go:embed web/index.html
var demoPage []byte

// demoHandler serves the demo page on GET /.
func demoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		// The page loads nothing from elsewhere; say so to the browser.
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self' ws: wss:")
		h.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(demoPage)
	})
}
