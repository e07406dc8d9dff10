package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

var errRedisReply = errors.New("roost: bench: unexpected reply from redis-server")

// redisFigures are the counters the harness reads from a redis-server it
// spawned: calls per command (INFO commandstats) and CPU seconds (INFO
// cpu, used_cpu_user + used_cpu_sys).
type redisFigures struct {
	calls map[string]int64
	cpu   float64
}

// readRedis asks the redis-server at addr for INFO commandstats and INFO
// cpu over a raw RESP connection (the harness carries no Redis client).
func readRedis(addr string) (redisFigures, error) {
	f := redisFigures{calls: map[string]int64{}}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return f, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for _, section := range []string{"commandstats", "cpu"} {
		fmt.Fprintf(c, "*2\r\n$4\r\nINFO\r\n$%d\r\n%s\r\n", len(section), section)
		body, err := readBulk(br)
		if err != nil {
			return f, err
		}
		parseRedisInfo(body, &f)
	}
	return f, nil
}

// readBulk reads one RESP bulk string.
func readBulk(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(line, "$") {
		return "", fmt.Errorf("%w: %q", errRedisReply, strings.TrimSpace(line))
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 0 || n > 1<<20 {
		return "", fmt.Errorf("%w: %q", errRedisReply, strings.TrimSpace(line))
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(br, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// parseRedisInfo adds the calls and CPU figures of an INFO body to f.
func parseRedisInfo(body string, f *redisFigures) {
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(k, "cmdstat_"):
			for _, kv := range strings.Split(v, ",") {
				if n, ok := strings.CutPrefix(kv, "calls="); ok {
					calls, _ := strconv.ParseInt(n, 10, 64)
					f.calls[strings.TrimPrefix(k, "cmdstat_")] = calls
				}
			}
		case k == "used_cpu_user" || k == "used_cpu_sys":
			s, _ := strconv.ParseFloat(v, 64)
			f.cpu += s
		}
	}
}

// redisDelta returns the calls per command between two readings (INFO
// itself left out, since the harness issued those) and their total.
func redisDelta(a, b redisFigures) (map[string]int64, int64) {
	out := map[string]int64{}
	var total int64
	for cmd, n := range b.calls {
		if d := n - a.calls[cmd]; d > 0 && cmd != "info" {
			out[cmd] = d
			total += d
		}
	}
	return out, total
}

// meminfoBytes returns a /proc/meminfo field (such as "Slab") in bytes, or
// -1.
func meminfoBytes(key string) int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return -1
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return -1
		}
		return kb << 10
	}
	return -1
}
