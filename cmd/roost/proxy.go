package main

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// parseProxies parses --trusted-proxies: addresses or CIDR prefixes,
// comma-separated. A bare address is a prefix of its full length.
func parseProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range splitList(s) {
		if strings.Contains(e, "/") {
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, errors.New(quote(e) + " is not an address or CIDR prefix")
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return nil, errors.New(quote(e) + " is not an address or CIDR prefix")
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func quote(s string) string { return `"` + s + `"` }

// clientAddrFunc returns the function that names the client of a request,
// for hub.Config.RemoteAddr, httpapi.Config.RemoteAddr and the per-IP
// connection rate. Without trusted proxies it is the TCP peer (r.RemoteAddr,
// host:port). When the peer is a trusted proxy, X-Forwarded-For is walked
// from the right, skipping trusted proxies, and the first other address is
// the client (a bare address, no port): entries to its left were written
// by the client itself and prove nothing. When every hop is trusted, the
// leftmost one is the client.
func clientAddrFunc(trusted []netip.Prefix) func(r *http.Request) string {
	if len(trusted) == 0 {
		return func(r *http.Request) string { return r.RemoteAddr }
	}
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		peer, ok := addrOf(r.RemoteAddr)
		if !ok || !isTrusted(peer) {
			return r.RemoteAddr
		}
		hops := r.Header.Values("X-Forwarded-For")
		if len(hops) == 0 {
			return r.RemoteAddr
		}
		list := strings.Split(strings.Join(hops, ","), ",")
		client := peer
		for i := len(list) - 1; i >= 0; i-- {
			a, ok := addrOf(strings.TrimSpace(list[i]))
			if !ok {
				break // garbage from the client side: the last good hop is as far as we can trust
			}
			client = a
			if !isTrusted(a) {
				break
			}
		}
		return client.String()
	}
}

// addrOf parses an address with or without a port.
func addrOf(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// hostOf returns the address part of a client address as clientAddrFunc
// produces it (host:port or a bare address): the per-IP limiter's key.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// newOriginCheck builds hub.Config.CheckOrigin from --allowed-origins.
// Entries are origins ("https://app.example.com") or bare hosts
// ("app.example.com:8443", any scheme); "*" allows any origin. An empty list
// allows any origin in open mode and only the server's own host in token
// mode, which defeats cross-site WebSocket hijacking with a victim's
// cookies or token. A request without Origin (not a browser) is allowed: the
// check protects browsers' users, and other clients can send any header.
// A nil func means "allow all".
func newOriginCheck(list string, tokenMode bool) (func(r *http.Request) bool, error) {
	type origin struct{ scheme, host string }
	var allowed []origin
	for _, e := range splitList(list) {
		if e == "*" {
			return nil, nil
		}
		o := origin{host: strings.ToLower(e)}
		if strings.Contains(e, "://") {
			u, err := url.Parse(e)
			if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return nil, errors.New(quote(e) + " is not an origin like https://app.example.com")
			}
			o = origin{scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Host)}
		} else if strings.ContainsAny(e, "/ ") {
			return nil, errors.New(quote(e) + " is not an origin like https://app.example.com")
		}
		allowed = append(allowed, o)
	}
	if len(allowed) == 0 && !tokenMode {
		return nil, nil
	}
	return func(r *http.Request) bool {
		h := r.Header.Get("Origin")
		if h == "" {
			return true
		}
		u, err := url.Parse(h)
		if err != nil || u.Host == "" {
			return false // includes "null" (sandboxed frames, file://)
		}
		scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
		if len(allowed) == 0 {
			return host == strings.ToLower(r.Host)
		}
		for _, a := range allowed {
			if a.host == host && (a.scheme == "" || a.scheme == scheme) {
				return true
			}
		}
		return false
	}, nil
}
