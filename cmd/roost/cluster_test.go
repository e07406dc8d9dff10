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

// TestClusterTwoBinaries runs two roost processes joined through a real
// Redis: a publish through node A's API reaches a client of node B, and
// presence asked on A names B's user.
func TestClusterTwoBinaries(t *testing.T) {
	t.Parallel()
	redisURL := "redis://" + startRedis(t)
	a := startRoost(t, []string{"ROOST_REDIS_URL=" + redisURL, "ROOST_NODE_ID=a"}, "--redis-prefix", "cmdtest")
	b := startRoost(t, []string{"ROOST_REDIS_URL=" + redisURL, "ROOST_NODE_ID=b"}, "--redis-prefix", "cmdtest")

	c := mustDial(t, b.wsURL("user=bea"), nil)
	if m := command(t, c, `{"id":1,"op":"subscribe","channel":"news"}`); !m.OK {
		t.Fatalf("subscribe on b: %+v", m)
	}
	pushes := make(chan string, 100)
	go func() {
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				close(pushes)
				return
			}
			pushes <- string(msg)
		}
	}()
	// B subscribes to Redis in the background: publish until a push arrives.
	deadline := time.Now().Add(20 * time.Second)
	for got := false; !got; {
		if time.Now().After(deadline) {
			t.Fatal("no cross-node delivery within 20s")
		}
		if code, body := httpDo(t, "POST", a.url("/api/publish"), `{"channel":"news","data":"via redis"}`, nil); code != 200 {
			t.Logf("publish on a: %d %s", code, body)
		}
		select {
		case m, ok := <-pushes:
			if !ok {
				t.Fatal("b's connection ended")
			}
			got = strings.Contains(m, `"via redis"`)
		case <-time.After(200 * time.Millisecond):
		}
	}
	eventually(t, 20*time.Second, "presence on a names b's user", func() bool {
		code, body := httpDo(t, "GET", a.url("/api/presence?channel=news"), "", nil)
		return code == 200 && strings.Contains(body, `"bea"`)
	})
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
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
