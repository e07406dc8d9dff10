package bench

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWorkerProcessProtocol drives a re-executed worker process through the
// whole plan protocol against an in-process baseline.
func TestWorkerProcessProtocol(t *testing.T) {
	url := startBaseline(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := startWorker(ctx, 0, testExec("worker"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.kill)
	assign := make([]int32, 20)
	for i := range assign {
		assign[i] = int32(i % 2)
	}
	plan := &Plan{URLs: []string{url}, Channels: []string{"a", "b"}, Assign: assign, Sources: []string{"127.0.0.2", "127.0.0.3"}}
	if err := w.send(toWorker{Plan: plan}); err != nil {
		t.Fatal(err)
	}
	r := &runner{o: &Options{}, http: http.DefaultClient}
	ready, err := r.waitFor(ctx, w, func(m fromWorker) bool { return m.Ready != nil }, func(*Progress) {})
	if err != nil {
		t.Fatal(err)
	}
	if ready.Ready.Connected != 20 || ready.Ready.Failed != 0 {
		t.Fatalf("ready = %+v", ready.Ready)
	}
	// Three messages to a, one to b.
	base := apiBase(url) + "/api/publish"
	published := []int64{0, 0}
	for i, ch := range []int{0, 0, 1, 0} {
		body := `{"channel":"` + plan.Channels[ch] + `","data":` + string(appendPayload(nil, time.Now().UnixNano(), published[ch], int64(ch), 60)) + `}`
		if err := r.post(ctx, base, []byte(body)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		published[ch]++
	}
	if err := w.send(toWorker{Expect: &Expect{Published: published, Wait: 10 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	rep, err := r.waitFor(ctx, w, func(m fromWorker) bool { return m.Report != nil }, func(*Progress) {})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Loss{Expected: 40, Delivered: 40}); rep.Report.Loss != want {
		t.Fatalf("loss = %+v, want %+v", rep.Report.Loss, want)
	}
	if len(rep.Report.Completion[0]) != 3 || len(rep.Report.Completion[1]) != 1 {
		t.Fatalf("completion = %v", rep.Report.Completion)
	}
	if err := w.finish(); err != nil {
		t.Fatalf("worker exit: %v", err)
	}
}

func TestWorkerRejectsBadInput(t *testing.T) {
	cases := []struct{ name, input string }{
		{"expect before plan", `{"expect":{"published":[1]}}` + "\n"},
		{"not json", "hello\n"},
		{"empty", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := testExec("worker")
			cmd.Stdin = strings.NewReader(c.input)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("worker exited with %v (%s), want exit status 1", err, out)
			}
		})
	}
}

// TestSpawnBaselineChild starts the baseline as a child process and checks
// that stopping it leaves no process behind.
func TestSpawnBaselineChild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := &Options{Spawn: "baseline", Exec: testExec, Nodes: 1}
	s, err := spawn(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	pid := s.pids()[0]
	if _, err := readProc(pid); err != nil {
		t.Fatalf("reading /proc for the child: %v", err)
	}
	st := fetchStats(ctx, http.DefaultClient, "http://"+s.nodes[0].addr, "")
	if st.Connections != 0 || st.Goroutines <= 0 || st.HeapAlloc <= 0 {
		t.Fatalf("stats = %+v", st)
	}
	s.stop()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("child %d still exists after stop (kill 0: %v)", pid, err)
	}
	s.stop() // idempotent
}

// TestRunSpawnsBaselineAndSeveralWorkers is the whole harness at small N:
// a baseline child, four worker processes, source addresses, merged results.
func TestRunSpawnsBaselineAndSeveralWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, Options{Scenario: "channels", Conns: 120, Channels: 6, Msgs: 30, Rate: 200, Spawn: "baseline",
		Exec: testExec, PerWorker: 30, Sources: "127.0.0.1-127.0.0.4", Quiet: true, Wait: 20 * time.Second})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Workers != 4 || res.Connected != 120 {
		t.Fatalf("workers %d, connected %d; want 4 and 120", res.Workers, res.Connected)
	}
	// 30 messages round-robin over 6 channels of 20 members: 5 x 20 x 6.
	if want := (Loss{Expected: 600, Delivered: 600}); res.Loss != want {
		t.Fatalf("loss = %+v, want %+v", res.Loss, want)
	}
	if res.Latency.Count != 600 || res.ServerSide.RSSConnected <= 0 || len(res.ServerSide.PIDs) != 1 {
		t.Fatalf("latency %+v, server %+v", res.Latency, res.ServerSide)
	}
	if err := syscall.Kill(res.ServerSide.PIDs[0], 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("baseline child %d left running", res.ServerSide.PIDs[0])
	}
}
