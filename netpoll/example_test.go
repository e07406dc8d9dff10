package netpoll_test

import (
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"

	"github.com/roost-rt/roost/netpoll"
)

// An echo server: no goroutine waits on any connection; the Poller's workers
// run the handler when a connection has data.
func Example() {
	p, err := netpoll.New(netpoll.Config{Handler: func(d *netpoll.Desc, ev netpoll.Event) {
		c := d.Value().(net.Conn)
		if ev&netpoll.EventRead != 0 {
			var buf [512]byte
			n, err := c.Read(buf[:]) // reported readable: returns at once
			if n > 0 {
				c.Write(buf[:n])
			}
			if err == nil {
				return
			}
		} else if ev&(netpoll.EventHup|netpoll.EventErr) == 0 {
			return
		}
		d.Remove() // before Close, so the descriptor number is free of us
		c.Close()
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if _, err := p.Add(c.(syscall.Conn), c); err != nil {
				c.Close()
			}
		}
	})

	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	cli.Write([]byte("hello, roost"))
	reply := make([]byte, len("hello, roost"))
	if _, err := io.ReadFull(cli, reply); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(reply))
	// Output: hello, roost
}
