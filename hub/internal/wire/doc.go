// Package wire is roost's byte-level protocol: an incremental RFC 6455 frame
// parser for the server side, append-style encoders for server frames, and
// the codec of the JSON client protocol (docs/protocol.md).
//
// The hub reads a connection only when epoll reports it readable, into a
// scratch buffer shared by all connections of a worker, and must hold
// nothing per idle connection. So Parser is fed arbitrary pieces of the
// stream and keeps only what an incomplete frame needs: a partial header in
// its 64-byte struct, a partial payload in a buffer borrowed from a
// size-class pool and returned when the message completes. Complete frames
// are unmasked in place and delivered without a copy.
//
// Parser enforces RFC 6455 for a server with no extensions: masked client
// frames, no reserved bits or opcodes, control frames of at most 125 bytes
// and never fragmented, well-ordered fragments, valid UTF-8 in text messages
// and close reasons (checked as bytes arrive, so a bad prefix fails at once),
// valid close codes, and a message size limit. Violations come back as a
// *CloseError carrying the close code to send (1002, 1007 or 1009).
//
// The encoders append to a caller's buffer and allocate nothing, so the hub
// can build a push and its frame header once per publish and share the bytes
// with every recipient. DecodeCommand is a hand-written scanner that
// allocates only the channel name on the common path; Data aliases the input.
package wire
