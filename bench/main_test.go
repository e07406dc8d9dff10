package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
)

// roleEnv makes the test binary act as a harness child (the re-exec pattern
// of os/exec's own tests): "worker" runs Worker on stdin/stdout, "baseline"
// serves the baseline on the address in its arguments.
const roleEnv = "ROOST_BENCH_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "":
		os.Exit(m.Run())
	case "worker":
		if err := Worker(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	case "baseline":
		addr := "127.0.0.1:0"
		if len(os.Args) > 2 && os.Args[1] == "--addr" {
			addr = os.Args[2]
		}
		if err := ServeBaseline(signalContext(), addr, os.Args[len(os.Args)-1] == "--floor", os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "baseline:", err)
			os.Exit(1)
		}
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "unknown role", os.Getenv(roleEnv))
		os.Exit(2)
	}
}

// testExec re-executes the test binary in a harness role.
func testExec(role string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	return cmd
}

// signalContext ends on SIGTERM or interrupt, as roost-bench's main does.
func signalContext() context.Context {
	ctx, _ := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	return ctx
}
