package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"slipway.dev/slipway"
)

// CodeMethodNotAllowed is the error code of a 405 answer. It is not a domain code: only the
// edge knows about methods.
const CodeMethodNotAllowed = "method_not_allowed"

// ErrorBody is the one shape of every error answer:
// {"error":{"code":"not_found","message":"...","details":["..."]}}.
type ErrorBody struct {
	Error *slipway.Error `json:"error"`
}

// HTTPStatus returns the HTTP status for a domain error code; unknown codes are 500.
func HTTPStatus(code string) int {
	switch code {
	case slipway.EINVALID:
		return http.StatusBadRequest
	case slipway.ENOTFOUND:
		return http.StatusNotFound
	case slipway.ECONFLICT:
		return http.StatusConflict
	case slipway.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case slipway.EFORBIDDEN:
		return http.StatusForbidden
	case slipway.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	}
	return http.StatusInternalServerError
}

// codeOf returns the domain code for an HTTP status, for answers that carry no error body.
func codeOf(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return slipway.EINVALID
	case http.StatusNotFound:
		return slipway.ENOTFOUND
	case http.StatusConflict:
		return slipway.ECONFLICT
	case http.StatusUnauthorized:
		return slipway.EUNAUTHORIZED
	case http.StatusForbidden:
		return slipway.EFORBIDDEN
	case http.StatusServiceUnavailable:
		return slipway.EUNAVAILABLE
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	}
	return slipway.EINTERNAL
}

// tooLarge marks a body over MaxBodyBytes; it answers 413 with code invalid.
type tooLarge struct{ err *slipway.Error }

func (t *tooLarge) Error() string { return t.err.Error() }
func (t *tooLarge) Unwrap() error { return t.err }

// fail writes err in the error shape. Internal errors are logged and answered with a generic
// message so that nothing about the server leaks.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var tl *tooLarge
	if errors.As(err, &tl) {
		WriteError(w, http.StatusRequestEntityTooLarge, tl.err)
		return
	}
	var tm *tooMany
	if errors.As(err, &tm) {
		WriteError(w, http.StatusTooManyRequests, tm.err)
		return
	}
	var e *slipway.Error
	if !errors.As(err, &e) || e.Code == slipway.EINTERNAL || HTTPStatus(e.Code) == http.StatusInternalServerError {
		if r.Context().Err() != nil {
			s.log.Debug("request ended early", "method", r.Method, "path", r.URL.Path, "err", err)
		} else {
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		WriteError(w, http.StatusInternalServerError, slipway.Errorf(slipway.EINTERNAL, "internal error"))
		return
	}
	// The domain error's own message is meant for the user; wrapping context is not sent.
	WriteError(w, HTTPStatus(e.Code), e)
}

// WriteError answers e with status as the API does ({"error": {...}}); a handler in front of
// the API (the environment router) answers the same way.
func WriteError(w http.ResponseWriter, status int, e *slipway.Error) {
	b, err := json.Marshal(ErrorBody{Error: e})
	if err != nil {
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeBody reads r's JSON body into v strictly: one object, no unknown fields, at most
// MaxBodyBytes. An empty body is allowed only when optional is true.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &tooLarge{err: slipway.Errorf(slipway.EINVALID, "request body is larger than %d bytes", mbe.Limit)}
		}
		return fmt.Errorf("read request body: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return slipway.Errorf(slipway.EINVALID, "request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return slipway.Errorf(slipway.EINVALID, "request body is not valid: %s", jsonProblem(err, body))
	}
	if dec.More() {
		return slipway.Errorf(slipway.EINVALID, "request body is not valid: unexpected data after the JSON object at offset %d", dec.InputOffset())
	}
	return nil
}

// jsonProblem says what is wrong with a JSON body in a user's terms.
func jsonProblem(err error, body []byte) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		// Offset counts the bytes read, including the offending one.
		line, col := position(body, max(se.Offset-1, 0))
		return fmt.Sprintf("malformed JSON at line %d, column %d: %s", line, col, strings.TrimPrefix(se.Error(), "json: "))
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Sprintf("field %s: got JSON %s, want %s", field, te.Value, te.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends before the JSON value does"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// position turns a byte offset into a 1-based line and column.
func position(b []byte, off int64) (line, col int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	pre := b[:off]
	line = bytes.Count(pre, []byte("\n")) + 1
	col = int(off) - bytes.LastIndexByte(pre, '\n')
	return line, col
}
