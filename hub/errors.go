package hub

import (
	"errors"
	"strconv"
)

// Error is a protocol-level error: it is sent to a client as the error of a
// reply ({"id":N,"error":{"code":C,"message":"..."}}), and an authentication
// hook returns it to choose the HTTP status of a refused upgrade (401 or 403).
type Error struct {
	Code    int    // 400 bad request, 401, 403 forbidden, 404, 413, 429, 500, 503
	Message string // human-readable, safe to show to the client
}

func (e *Error) Error() string {
	return "roost: " + strconv.Itoa(e.Code) + " " + e.Message
}

// Errors returned by the Hub's methods.
var (
	// ErrClosed is returned by calls made after Shutdown started.
	ErrClosed = errors.New("roost: hub is shut down")
	// ErrBadChannel is returned for a channel name that is empty, longer than
	// 255 bytes, or holds whitespace or non-printable characters.
	ErrBadChannel = errors.New("roost: invalid channel name")
	// ErrBadData is returned when a payload is not valid JSON.
	ErrBadData = errors.New("roost: data is not valid JSON")
	// ErrBrokerDown is returned (wrapped) when local delivery happened but the
	// Broker could not carry the message to other nodes.
	ErrBrokerDown = errors.New("roost: broker unavailable, message not delivered to other nodes")
	// ErrNotFound is returned for an unknown connection or user.
	ErrNotFound = errors.New("roost: not found")
)

// Reply errors the protocol uses; their codes are the contract in docs/protocol.md.
var (
	errTooMany  = &Error{Code: 429, Message: "too many requests"}
	errInternal = &Error{Code: 500, Message: "internal error"}
)
