//go:build linux && !netpoll_fallback

package netpoll

import (
	"net"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestDescSize keeps an idle Desc within the 48-byte size class.
func TestDescSize(t *testing.T) {
	if size := unsafe.Sizeof(Desc{}); unsafe.Sizeof(uintptr(0)) == 8 && size > 48 {
		t.Fatalf("Desc is %d bytes, want at most 48", size)
	}
}

// TestStaleGenerationDropped re-arms a registered descriptor with the event
// data of an older registration of the same number, as if the event had been
// fetched before Remove and processed after a new Add, and checks that the
// loop drops it instead of calling the handler with the new Desc.
func TestStaleGenerationDropped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	calls := make(chan Event, 8)
	p, err := New(Config{Handler: func(d *Desc, ev Event) { calls <- ev }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	old, err := p.Add(srv.(*net.TCPConn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Remove(); err != nil {
		t.Fatal(err)
	}
	d, err := p.Add(srv.(*net.TCPConn), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Arm with the old registration's generation while the descriptor is not readable, then
	// make it readable: the kernel reports the stale generation.
	if err := epollCtl(p.epfd, unix.EPOLL_CTL_MOD, d.fd, readInterest, old.gen); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-calls:
		t.Fatalf("handler called with %v for a stale generation", ev)
	case <-time.After(100 * time.Millisecond):
	}
	// The current generation is delivered.
	if err := epollCtl(p.epfd, unix.EPOLL_CTL_MOD, d.fd, readInterest, d.gen); err != nil {
		t.Fatal(err)
	}
	select {
	case <-calls:
	case <-time.After(10 * time.Second):
		t.Fatal("no event for the current generation")
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
}

// TestAddFdRawSocket registers one end of a socketpair that no net.Conn
// wraps: reads and write readiness are delivered as for Add, and after
// Remove the descriptor can be closed and its number reused by another
// registration.
func TestAddFdRawSocket(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	calls := make(chan Event, 8)
	p, err := New(Config{Handler: func(d *Desc, ev Event) {
		select { // the byte stays unread: read events repeat until Remove
		case calls <- ev:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d, err := p.AddFd(fds[0], "raw")
	if err != nil {
		t.Fatal(err)
	}
	if d.Value() != "raw" || d.Fd() != fds[0] {
		t.Fatalf("Desc carries %v, fd %d", d.Value(), d.Fd())
	}
	if _, err := p.AddFd(fds[0], nil); err != ErrRegistered {
		t.Fatalf("second AddFd: %v, want ErrRegistered", err)
	}
	if _, err := unix.Write(fds[1], []byte("x")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, calls, EventRead)
	if err := d.WantWrite(); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, calls, EventWrite)
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Close(fds[0]); err != nil {
		t.Fatal(err)
	}
	// The number is free again: a new socket may get it and register.
	again, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(again)
	d2, err := p.AddFd(again, nil)
	if err != nil {
		t.Fatalf("AddFd of a new socket numbered %d: %v", again, err)
	}
	if err := d2.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddFd(-1, nil); err == nil {
		t.Fatal("AddFd(-1) succeeded")
	}
}

// waitEvent waits for a handler call that carries want.
func waitEvent(t *testing.T, calls <-chan Event, want Event) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-calls:
			if ev&want != 0 {
				return
			}
		case <-deadline:
			t.Fatalf("no %v event", want)
		}
	}
}
