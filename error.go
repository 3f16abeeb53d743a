package slipway

import (
	"errors"
	"fmt"
)

// Error codes. They are mapped to HTTP statuses at the edge (httpapi) and to exit codes in cmd.
const (
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	EINTERNAL     = "internal"
	// EUNAVAILABLE: the server cannot do it now, for a reason the operator can fix (its
	// disk is full or read-only); the message says which, without internals.
	EUNAVAILABLE = "unavailable"
)

// Error is slipway's one coded error. Message is meant for the user.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Details lists individual problems, for example one line per validation error.
	Details []string `json:"details,omitempty"`
}

func (e *Error) Error() string {
	if len(e.Details) == 0 {
		return e.Message
	}
	s := e.Message
	for _, d := range e.Details {
		s += "\n  " + d
	}
	return s
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any other
// error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of the first *Error in err's chain, or a
// generic message for any other error.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrNoData is returned by a Provider when the query succeeded but returned no measurement.
// The analysis runner counts it by the metric's noData policy, never as a success.
var ErrNoData = errors.New("no data")

// ErrInsufficientData is returned by a Provider when the source answered, but with a sample
// too small to judge yet (a builtin metric's window holding fewer than its minRequests). It
// is not a measurement: the analysis measures again shortly, until the sample is there or the
// metric's sample timeout passes, when it counts by the noData policy, never as a success.
var ErrInsufficientData = errors.New("not enough data yet")
