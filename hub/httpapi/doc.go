// Package httpapi is the HTTP face a roost hub shows to backends and
// operators: a small JSON API to publish, send and disconnect, presence and
// stats queries, Prometheus metrics, and health probes. Mount the handler
// New returns on "/" next to the hub itself on "/ws".
//
// # Endpoints
//
//	POST /api/publish     {"channel":"news","data":<JSON>,"exclude_user":"u7"} -> {"ok":true}
//	POST /api/broadcast   {"channels":["a","b"],"data":<JSON>}                 -> {"ok":true}
//	POST /api/send        {"user":"u1","data":<JSON>}                          -> {"ok":true}
//	POST /api/disconnect  {"user":"u1"}                                        -> {"ok":true}
//	GET  /api/presence?channel=news                  -> {"users":["u1"]}
//	GET  /api/online?user=u1                         -> {"online":true,"connections":2}
//	GET  /api/stats                                  -> hub.Stats plus Go runtime figures
//	GET  /api/channels?prefix=&after=&limit=         -> {"channels":[{"name":..,"members":..}],"next":".."}
//	GET  /metrics                                    Prometheus text format
//	GET  /healthz                                    {"ok":true}
//	GET  /readyz                                     {"ready":true,"degraded":false}; 503 while draining
//
// "data" is forwarded to the hub byte for byte (it is never decoded and
// re-encoded), so what a backend sends is what clients receive.
//
// # Security
//
// /api/* needs "Authorization: apikey KEY" when Config.APIKey is set; the key
// is compared in constant time (over SHA-256 digests, so not even its length
// leaks). Without a key the API answers only clients on loopback addresses,
// which is safe for development and for a backend on the same host, and
// refuses everyone else with 403 rather than silently exposing an
// unauthenticated publish endpoint. /metrics, /healthz and /readyz are never
// behind the key: scrapers and load balancers must reach them.
//
// # Errors
//
// Every error is JSON, {"error":{"code":C,"message":"..."}}, with C equal
// to the HTTP status: 400 for malformed JSON, unknown or missing fields, an
// invalid channel name or data that is not one JSON value; 401 and 403 as
// above; 404 for unknown paths; 405 with an Allow header for a wrong method;
// 413 for a body over Config.MaxBodyBytes; 503 once the hub is shut down, or
// when a message was delivered on this node but the Broker could not carry it
// to the others (the message says so, and a retry would deliver it twice
// locally).
//
// # Metrics
//
// Metrics exists before the hub, because hub.Config's hooks feed its
// fan-out histograms and handshake-failure counters; New then adds a
// collector that reads hub.Stats once per scrape. See NewMetrics for the
// list of series.
package httpapi
