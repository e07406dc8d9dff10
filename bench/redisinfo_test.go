package bench

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"
)

func TestParseRedisInfo(t *testing.T) {
	body := "# Commandstats\r\ncmdstat_publish:calls=12,usec=40,usec_per_call=3.33,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_info:calls=4,usec=100\r\ncmdstat_subscribe:calls=3,usec=9\r\n# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.250000\r\nused_cpu_sys_children:9.0\r\n"
	var f redisFigures
	f.calls = map[string]int64{}
	parseRedisInfo(body, &f)
	if f.calls["publish"] != 12 || f.calls["subscribe"] != 3 || f.cpu != 3.75 {
		t.Fatalf("parsed %+v", f)
	}
	before := redisFigures{calls: map[string]int64{"publish": 2, "info": 1}}
	d, total := redisDelta(before, f)
	if total != 13 || d["publish"] != 10 || d["subscribe"] != 3 || d["info"] != 0 {
		t.Fatalf("delta %v, total %d; want publish 10, subscribe 3, no info", d, total)
	}
}

// TestReadRedisCountsCommands reads a real redis-server's counters around
// three PUBLISH commands.
func TestReadRedisCountsCommands(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("%v (make test-deps installs it)", errNoRedis)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := startRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.stop(5 * time.Second) })
	a, err := readRedis(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		fmt.Fprintf(c, "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$1\r\n%d\r\n", i)
	}
	buf := make([]byte, 64)
	got := 0
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for got < len(":0\r\n")*3 {
		n, err := c.Read(buf[got:])
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	b, err := readRedis(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	d, total := redisDelta(a, b)
	if d["publish"] != 3 || total != 3 {
		t.Fatalf("delta %v (total %d), want 3 publishes", d, total)
	}
}
