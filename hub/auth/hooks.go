package auth

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/roost-rt/roost/hub"
)

// ErrPublishForbidden refuses a client publish on a channel outside the
// prefixes given to ClientPublishPrefixes.
var ErrPublishForbidden = &hub.Error{Code: 403, Message: "publish not allowed on this channel"}

// Authenticate returns a hub.AuthFunc that verifies the token of an upgrade
// request. The token is taken from the "token" query parameter (what a
// browser's WebSocket can send) or from an "Authorization: Bearer" header
// (RFC 6750 section 2.1; the scheme is case-insensitive). A request that
// carries it in both places, or twice in one, is refused with
// ErrTokenTwice rather than guessing which one counts. An Authorization
// header with another scheme is ignored. Refusals are *hub.Error with code
// 401, so the hub answers 401 before any WebSocket is opened.
func (v *Verifier) Authenticate() hub.AuthFunc {
	return func(r *http.Request) (hub.Identity, error) {
		token, err := requestToken(r)
		if err != nil {
			return hub.Identity{}, err
		}
		return v.Verify(token)
	}
}

// requestToken finds the one token of r.
func requestToken(r *http.Request) (string, error) {
	var found []string
	for _, h := range r.Header.Values("Authorization") {
		scheme, cred, ok := strings.Cut(strings.TrimSpace(h), " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			found = append(found, strings.TrimSpace(cred))
		}
	}
	if r.URL != nil {
		found = append(found, r.URL.Query()["token"]...)
	}
	switch len(found) {
	case 0:
		return "", ErrTokenMissing
	case 1:
		if found[0] == "" {
			return "", ErrTokenMissing
		}
		return found[0], nil
	}
	return "", ErrTokenTwice
}

// Refresh returns a hub.RefreshFunc that verifies the token of a
// {"op":"refresh"} command exactly as Authenticate verifies an upgrade. The
// hub itself checks that the new identity's User is the connection's.
func (v *Verifier) Refresh() hub.RefreshFunc {
	return func(_ context.Context, _ hub.ConnInfo, token string) (hub.Identity, error) {
		return v.Verify(token)
	}
}

// ClientPublishPrefixes returns a hub.AuthorizeFunc for
// hub.Config.AuthorizePublish that lets clients publish only on channels
// starting with one of prefixes (for example "chat:" and "room:"); the entry
// "*" allows every channel. Entries are trimmed of spaces and empty ones
// dropped, so a flag value like "chat:, room:," means what it says; an empty
// list refuses every client publish, which is token mode's default.
//
// A private channel ('$' prefix) additionally requires the same permission
// as joining it: the channel, or "*", in the connection's
// Identity.Channels. Otherwise a client could write into a channel it is
// not allowed to read. Refusals are ErrPublishForbidden (403).
func ClientPublishPrefixes(prefixes []string) hub.AuthorizeFunc {
	var list []string
	all := false
	for _, p := range prefixes {
		p = strings.TrimSpace(p)
		switch p {
		case "":
		case "*":
			all = true
		default:
			list = append(list, p)
		}
	}
	return func(c hub.ConnInfo, channel string) error {
		if strings.HasPrefix(channel, "$") &&
			!slices.Contains(c.Identity.Channels, channel) && !slices.Contains(c.Identity.Channels, "*") {
			return ErrPublishForbidden
		}
		if all {
			return nil
		}
		for _, p := range list {
			if strings.HasPrefix(channel, p) {
				return nil
			}
		}
		return ErrPublishForbidden
	}
}
