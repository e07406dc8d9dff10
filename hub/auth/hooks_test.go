package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roost-rt/roost/hub"
)

func TestAuthenticate(t *testing.T) {
	k := keys(t)
	v := verifier(t, Config{Secret: k.secret})
	good := sign(t, jwt.SigningMethodHS256, k.secret, claimsFor("u1"), nil)
	other := sign(t, jwt.SigningMethodHS256, k.secret, claimsFor("u2"), nil)
	forged := sign(t, jwt.SigningMethodHS256, []byte("0123456789abcdef0123456789abcdef"), claimsFor("u1"), nil)
	q := func(tok string) string { return "/ws?token=" + url.QueryEscape(tok) }

	tests := []struct {
		name    string
		target  string
		headers []string // Authorization values
		want    string   // user; "" when refused
		wantErr *hub.Error
	}{
		{"header", "/ws", []string{"Bearer " + good}, "u1", nil},
		{"header lower-case scheme", "/ws", []string{"bearer " + good}, "u1", nil},
		{"header extra spaces", "/ws", []string{"  Bearer   " + good + " "}, "u1", nil},
		{"query", q(good), nil, "u1", nil},
		{"query and Basic header", q(good), []string{"Basic dTE6cHc="}, "u1", nil},
		{"nothing", "/ws", nil, "", ErrTokenMissing},
		{"empty query", "/ws?token=", nil, "", ErrTokenMissing},
		{"empty bearer", "/ws", []string{"Bearer "}, "", ErrTokenMissing},
		{"Basic header only", "/ws", []string{"Basic dTE6cHc="}, "", ErrTokenMissing},
		{"header and query", q(good), []string{"Bearer " + good}, "", ErrTokenTwice},
		{"header and query differ", q(other), []string{"Bearer " + good}, "", ErrTokenTwice},
		{"two query values", q(good) + "&token=" + url.QueryEscape(other), nil, "", ErrTokenTwice},
		{"two headers", "/ws", []string{"Bearer " + good, "Bearer " + other}, "", ErrTokenTwice},
		{"forged in header", "/ws", []string{"Bearer " + forged}, "", ErrSignature},
		{"forged in query", q(forged), nil, "", ErrSignature},
		{"garbage in query", "/ws?token=xyz", nil, "", ErrTokenMalformed},
	}
	auth := v.Authenticate()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.target, nil)
			for _, h := range tc.headers {
				r.Header.Add("Authorization", h)
			}
			id, err := auth(r)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Authenticate error = %v, want %v", err, tc.wantErr)
				}
				var he *hub.Error
				if !errors.As(err, &he) || he.Code != 401 {
					t.Fatalf("Authenticate error = %#v, want *hub.Error 401", err)
				}
				return
			}
			if err != nil || id.User != tc.want {
				t.Fatalf("Authenticate = %+v, %v; want user %q", id, err, tc.want)
			}
		})
	}
}

func TestRefresh(t *testing.T) {
	k := keys(t)
	v := verifier(t, Config{Secret: k.secret})
	refresh := v.Refresh()
	conn := hub.ConnInfo{ID: 7, User: "u1"}
	later := testNow.Add(2 * time.Hour).Truncate(time.Second)
	tok := sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "u1", "exp": later.Unix(), "channels": []string{"$x"}}, nil)
	id, err := refresh(context.Background(), conn, tok)
	if err != nil || id.User != "u1" || !id.ExpiresAt.Equal(later) || len(id.Channels) != 1 {
		t.Fatalf("Refresh = %+v, %v", id, err)
	}
	expired := sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "u1", "exp": testNow.Add(-time.Hour).Unix()}, nil)
	if _, err := refresh(context.Background(), conn, expired); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("Refresh(expired) = %v, want %v", err, ErrTokenExpired)
	}
	if _, err := refresh(context.Background(), conn, ""); !errors.Is(err, ErrTokenMissing) {
		t.Fatalf("Refresh(\"\") = %v, want %v", err, ErrTokenMissing)
	}
}

func TestClientPublishPrefixes(t *testing.T) {
	plain := hub.ConnInfo{User: "u1"}
	member := hub.ConnInfo{User: "u1", Identity: hub.Identity{User: "u1", Channels: []string{"$team"}}}
	star := hub.ConnInfo{User: "u1", Identity: hub.Identity{User: "u1", Channels: []string{"*"}}}
	tests := []struct {
		name     string
		prefixes []string
		conn     hub.ConnInfo
		channel  string
		allowed  bool
	}{
		{"matching prefix", []string{"chat:", "room:"}, plain, "chat:lobby", true},
		{"second prefix", []string{"chat:", "room:"}, plain, "room:1", true},
		{"no match", []string{"chat:", "room:"}, plain, "news", false},
		{"prefix is not a substring match", []string{"chat:"}, plain, "xchat:1", false},
		{"empty list refuses all", nil, plain, "chat:lobby", false},
		{"only empty entries refuse all", []string{"", " "}, plain, "chat:lobby", false},
		{"entries are trimmed", []string{" chat: ", ""}, plain, "chat:lobby", true},
		{"star allows all", []string{"*"}, plain, "news", true},
		{"private needs the claim", []string{"*"}, plain, "$team", false},
		{"private with the claim", []string{"$"}, member, "$team", true},
		{"private with another claim", []string{"$"}, member, "$other", false},
		{"private with star claim", []string{"$"}, star, "$other", true},
		{"private claim but no prefix", []string{"chat:"}, member, "$team", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ClientPublishPrefixes(tc.prefixes)(tc.conn, tc.channel)
			if tc.allowed {
				if err != nil {
					t.Fatalf("publish on %q refused: %v", tc.channel, err)
				}
				return
			}
			var he *hub.Error
			if !errors.As(err, &he) || he.Code != 403 || !errors.Is(err, ErrPublishForbidden) {
				t.Fatalf("publish on %q = %v, want *hub.Error 403", tc.channel, err)
			}
		})
	}
}

func TestClientPublishPrefixesCopiesList(t *testing.T) {
	prefixes := []string{"chat:"}
	allow := ClientPublishPrefixes(prefixes)
	prefixes[0] = "news"
	if err := allow(hub.ConnInfo{}, "chat:1"); err != nil {
		t.Fatalf("the hook changed with the caller's slice: %v", err)
	}
}
