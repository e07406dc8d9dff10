package cluster

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a real redis-server process on a loopback port, owned by
// one test.
type redisServer struct {
	tb    testing.TB
	port  int
	args  []string
	mu    sync.Mutex
	cmd   *exec.Cmd // guarded by mu
	waitc chan struct{}
}

// Addr returns host:port.
func (s *redisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// freePort returns a loopback port nobody listened on a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func redisBinary(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("%s not found: install redis-server (make test does it): %v", name, err)
	}
	return p
}

// startRedis starts a standalone redis-server without persistence and waits
// until it answers PING. Cleanup kills it.
func startRedis(tb testing.TB, extra ...string) *redisServer {
	tb.Helper()
	s := &redisServer{tb: tb, port: freePort(tb)}
	s.args = append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, extra...)
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

// Start (re)starts the process on the same port.
func (s *redisServer) Start() {
	s.tb.Helper()
	cmd := exec.Command(redisBinary(s.tb, "redis-server"), s.args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	waitc := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waitc) }()
	s.mu.Lock()
	s.cmd, s.waitc = cmd, waitc
	s.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	waitFor(s.tb, 10*time.Second, "redis-server on "+s.Addr()+" answers PING", func() bool {
		return c.Ping(context.Background()).Err() == nil
	})
}

// Stop kills the process (SIGKILL, by PID) and waits for it to exit.
func (s *redisServer) Stop() {
	s.mu.Lock()
	cmd, waitc := s.cmd, s.waitc
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-waitc
}

// Client returns a go-redis client of the server, closed by Cleanup.
func (s *redisServer) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// info returns one field of INFO section from c.
func info(tb testing.TB, c redis.UniversalClient, section, field string) string {
	tb.Helper()
	s, err := c.Info(context.Background(), section).Result()
	if err != nil {
		tb.Fatalf("INFO %s: %v", section, err)
	}
	for _, line := range strings.Split(s, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			return v
		}
	}
	return ""
}

// redisCluster is a three-master Redis Cluster of real processes.
type redisCluster struct {
	nodes []*redisServer
}

// Addrs returns the masters' addresses.
func (c *redisCluster) Addrs() []string {
	var a []string
	for _, n := range c.nodes {
		a = append(a, n.Addr())
	}
	return a
}

// Client returns a ClusterClient, closed by Cleanup.
func (c *redisCluster) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	tb.Cleanup(func() { _ = cc.Close() })
	return cc
}

// startRedisCluster starts three cluster-enabled redis-servers, joins them
// with redis-cli --cluster create and waits for cluster_state:ok.
func startRedisCluster(tb testing.TB) *redisCluster {
	tb.Helper()
	dir := tb.TempDir()
	c := &redisCluster{}
	for range 3 {
		port := freePort(tb)
		conf := filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", port))
		s := &redisServer{tb: tb, port: port}
		s.args = []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", conf, "--dir", dir}
		s.Start()
		tb.Cleanup(s.Stop)
		c.nodes = append(c.nodes, s)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(redisBinary(tb, "redis-cli"), args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range c.nodes {
		cl := redis.NewClient(&redis.Options{Addr: n.Addr()})
		waitFor(tb, 20*time.Second, "cluster_state:ok on "+n.Addr(), func() bool {
			s, err := cl.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(s, "cluster_state:ok")
		})
		_ = cl.Close()
	}
	return c
}

// waitFor polls cond until it holds or the deadline passes; it never relies
// on a fixed sleep being long enough.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(delay)
	}
}
