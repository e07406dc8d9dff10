package auth_test

import (
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roost-rt/roost/hub"
	"github.com/roost-rt/roost/hub/auth"
)

// The backend that logs users in signs a token; the hub verifies it on the
// upgrade and lets the user into the private channels the token lists.
func Example() {
	secret := []byte("an example secret of at least 32 bytes")
	v, err := auth.New(auth.Config{Secret: secret, Audience: "roost"})
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := hub.Config{
		Authenticate:     v.Authenticate(),
		Refresh:          v.Refresh(),
		AuthorizePublish: auth.ClientPublishPrefixes([]string{"chat:"}),
	}

	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub":      "alice",
		"aud":      "roost",
		"exp":      time.Now().Add(time.Hour).Unix(),
		"channels": []string{"$team"},
	}).SignedString(secret)

	r := httptest.NewRequest("GET", "/ws", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	id, err := cfg.Authenticate(r)
	fmt.Println(id.User, id.Channels, err)

	r = httptest.NewRequest("GET", "/ws?token=forged.token.here", nil)
	_, err = cfg.Authenticate(r)
	fmt.Println(err)

	fmt.Println(cfg.AuthorizePublish(hub.ConnInfo{Identity: id}, "news"))
	// Output:
	// alice [$team] <nil>
	// roost: 401 token malformed
	// roost: 403 publish not allowed on this channel
}
