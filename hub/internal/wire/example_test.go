package wire_test

import (
	"errors"
	"fmt"

	"github.com/gobwas/ws"
	"github.com/roost-rt/roost/hub/internal/wire"
)

// A client frame arriving in two reads: the parser keeps the partial frame
// between Feed calls and delivers the message when it completes; the hub
// then decodes the command and answers with a frame of its own.
func Example() {
	frame := ws.MustCompileFrame(ws.MaskFrame(ws.NewTextFrame([]byte(`{"id":1,"op":"subscribe","channel":"news"}`))))

	var p wire.Parser
	var reply []byte
	handle := func(m wire.Message) error {
		if m.Kind != wire.KindText {
			return nil
		}
		var c wire.Command
		if err := wire.DecodeCommand(m.Payload, &c); err != nil {
			var de *wire.DecodeError
			if errors.As(err, &de) {
				body := wire.AppendError(nil, c.ID, c.HasID, 400, de.Msg)
				reply = wire.AppendFrame(reply, wire.KindText, body)
			}
			return nil
		}
		fmt.Println(c.Op, c.Channel)
		reply = wire.AppendFrame(reply, wire.KindText, wire.AppendOK(nil, c.ID))
		return nil
	}
	for _, read := range [][]byte{frame[:10], frame[10:]} {
		if err := p.Feed(read, 1<<16, handle); err != nil {
			var ce *wire.CloseError
			if errors.As(err, &ce) {
				reply = wire.AppendClose(reply, ce.Code, ce.Reason)
			}
			break
		}
		fmt.Println("pending:", p.Pending())
	}
	fmt.Printf("%q\n", reply[2:])
	// Output:
	// pending: true
	// subscribe news
	// pending: false
	// "{\"id\":1,\"ok\":true}"
}

// A protocol violation: an unmasked client frame gets close code 1002.
func ExampleParser_Feed_protocolError() {
	var p wire.Parser
	err := p.Feed([]byte{0x81, 0x02, 'h', 'i'}, 0, func(wire.Message) error { return nil })
	var ce *wire.CloseError
	if errors.As(err, &ce) {
		fmt.Println(ce.Code, ce.Reason)
	}
	// Output: 1002 unmasked client frame
}
