package main

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedis starts a throw-away redis-server on a free loopback port and
// returns its address.
func startRedis(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not found: install redis-server (make test does it)")
	}
	port := freePort(t)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	eventually(t, 10*time.Second, "redis-server answers PING", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			return false
		}
		b := make([]byte, 7)
		n, _ := c.Read(b)
		return string(b[:n]) == "+PONG\r\n"
	})
	return addr
}

// TestClusterThreeBinaries runs three roost processes joined through a real
// Redis: a publish through node A's API reaches clients of B and C, a send
// through A reaches a user connected to C, and presence and online asked on
// A answer for the whole cluster.
func TestClusterThreeBinaries(t *testing.T) {
	t.Parallel()
	redisURL := "redis://" + startRedis(t)
	var nodes []*proc
	for _, id := range []string{"a", "b", "c"} {
		nodes = append(nodes, startRoost(t, []string{"ROOST_REDIS_URL=" + redisURL, "ROOST_NODE_ID=" + id}, "--redis-prefix", "cmdtest"))
	}
	a := nodes[0]
	pushes := map[string]chan string{}
	for i, user := range []string{"bea", "cid"} {
		c := mustDial(t, nodes[i+1].wsURL("user="+user), nil)
		if m := command(t, c, `{"id":1,"op":"subscribe","channel":"news"}`); !m.OK {
			t.Fatalf("subscribe as %s: %+v", user, m)
		}
		ch := make(chan string, 100)
		pushes[user] = ch
		_ = c.SetReadDeadline(time.Time{}) // command left one; this reader waits as long as the test does
		go func() {
			defer close(ch)
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				ch <- string(msg)
			}
		}()
		t.Cleanup(func() {
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		})
	}
	// The other nodes subscribe to Redis in the background: publish until
	// both have a push.
	got := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("cross-node delivery within 20s reached only %v", got)
		}
		if code, body := httpDo(t, "POST", a.url("/api/publish"), `{"channel":"news","data":"via redis"}`, nil); code != 200 {
			t.Logf("publish on a: %d %s", code, body)
		}
		for user, ch := range pushes {
			select {
			case m, ok := <-ch:
				if !ok {
					t.Fatalf("%s's connection ended", user)
				}
				if strings.Contains(m, `"via redis"`) {
					got[user] = true
				}
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	eventually(t, 20*time.Second, "presence on a names the users of b and c", func() bool {
		code, body := httpDo(t, "GET", a.url("/api/presence?channel=news"), "", nil)
		return code == 200 && strings.Contains(body, `"bea"`) && strings.Contains(body, `"cid"`)
	})
	// A send is routed through the user's entry in Redis, which c writes
	// one presence flush after the connect (architecture.md, delivery
	// window): wait until a sees cid online, as a careful backend would.
	eventually(t, 20*time.Second, "a sees c's user online", func() bool {
		code, body := httpDo(t, "GET", a.url("/api/online?user=cid"), "", nil)
		return code == 200 && strings.Contains(body, `"online":true`)
	})
	if code, body := httpDo(t, "POST", a.url("/api/send"), `{"user":"cid","data":"direct"}`, nil); code != 200 {
		t.Fatalf("send on a: %d %s", code, body)
	}
	for sent := time.After(10 * time.Second); ; {
		select {
		case m, ok := <-pushes["cid"]:
			if !ok {
				t.Fatal("cid's connection ended before the send arrived")
			}
			if m != `{"data":"direct"}` {
				continue
			}
		case <-sent:
			t.Fatal("a send through a did not reach the user on c within 10s")
		}
		break
	}
}

// TestClusterRedisDownAtStart checks that a node whose Redis is unreachable
// starts anyway, serves locally and reports itself degraded.
func TestClusterRedisDownAtStart(t *testing.T) {
	t.Parallel()
	p := startRoost(t, nil, "--redis-url", "redis://127.0.0.1:"+strconv.Itoa(freePort(t)))
	code, body := httpDo(t, "GET", p.url("/readyz"), "", nil)
	if code != 200 || !strings.Contains(body, `"degraded":true`) {
		t.Errorf("/readyz: %d %s, want 200 degraded", code, body)
	}
	c := mustDial(t, p.wsURL("user=solo"), nil)
	if m := command(t, c, `{"id":1,"op":"subscribe","channel":"local"}`); !m.OK {
		t.Fatalf("subscribe: %+v", m)
	}
	// Local delivery happens; the API reports the cluster part failed.
	code, body = httpDo(t, "POST", p.url("/api/publish"), `{"channel":"local","data":1}`, nil)
	if code != 503 {
		t.Errorf("publish with Redis down: %d %s, want 503", code, body)
	}
	if m := readMessage(t, c); m.Channel != "local" {
		t.Errorf("local push %+v", m)
	}
}
