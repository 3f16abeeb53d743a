package fastpath

import "strings"

// hopHeaders are the headers of one connection only (RFC 9110 7.6.1), not forwarded.
// Transfer-Encoding and Trailer are handled by the framing code.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Upgrade"}

// maxScanTokens is how many names a connTokens compares one by one; past it, it keeps a
// set of them, so that stripping a head costs the same per header however many names the
// Connection header lists.
const maxScanTokens = 8

// connTokens is what a message's Connection headers list: close and keep-alive as flags,
// and every name, whose fields are hop-by-hop and not forwarded.
type connTokens struct {
	close     bool
	keepAlive bool
	framing   bool // a framing header is listed (framingToken)
	names     []string
	set       map[string]struct{} // the names in lower case, once there are many
}

// reset empties t, keeping the room it has.
func (t *connTokens) reset() {
	t.close, t.keepAlive, t.framing = false, false, false
	clear(t.names)
	t.names, t.set = t.names[:0], nil
}

// add adds the comma-separated tokens of one Connection header value.
func (t *connTokens) add(v string) {
	for v != "" {
		var tok string
		tok, v, _ = strings.Cut(v, ",")
		if tok = trimOWS(tok); tok == "" {
			continue
		}
		switch {
		case asciiEqualFold(tok, "close"):
			t.close = true
		case asciiEqualFold(tok, "keep-alive"):
			t.keepAlive = true
		case framingToken(tok):
			t.framing = true
		}
		if t.set == nil && len(t.names) < maxScanTokens {
			t.names = append(t.names, tok)
			continue
		}
		if t.set == nil {
			t.set = make(map[string]struct{}, 2*maxScanTokens)
			for _, n := range t.names {
				t.set[string(appendLower(nil, n))] = struct{}{}
			}
		}
		t.set[string(appendLower(nil, tok))] = struct{}{}
	}
}

// listed reports whether name (any case) is one of t's names.
func listed[T string | []byte](t *connTokens, name T) bool {
	if t.set != nil {
		var buf [64]byte
		_, ok := t.set[string(appendLower(buf[:0], name))]
		return ok
	}
	for _, n := range t.names {
		if asciiEqualFold(name, n) {
			return true
		}
	}
	return false
}

// appendLower appends s in ASCII lower case to b.
func appendLower[T string | []byte](b []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// isHop reports whether a header called name is not forwarded: hop-by-hop, or listed in
// the message's Connection headers (t).
func isHop[T string | []byte](name T, t *connTokens) bool {
	return isHopHeader(name) || listed(t, name)
}

// isHopHeader reports whether name is one of hopHeaders (any case).
func isHopHeader[T string | []byte](name T) bool {
	for _, h := range hopHeaders {
		if asciiEqualFold(name, h) {
			return true
		}
	}
	return false
}

// hopRequest reports whether a request header is not forwarded as is: hop-by-hop, or one
// of the forwarding headers the fast path sets itself.
func hopRequest(name string, t *connTokens) bool {
	switch len(name) {
	case 9, 15, 16, 17:
		if equalFoldAny(name, "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto") {
			return true
		}
	}
	return isHop(name, t)
}

// framingToken reports whether a header named name says where a message ends or which
// resource it is for: Content-Length, Transfer-Encoding, Host. A Connection header that
// lists one would have the fast path drop it as hop-by-hop while it still frames the body
// by it, so that the backend reads the body as another request. net/http re-frames such a
// message from what it parsed, so the fast path hands it over; in a response, those
// headers are never dropped (writeHead).
func framingToken[T string | []byte](name T) bool {
	return asciiEqualFold(name, "Content-Length") || asciiEqualFold(name, "Transfer-Encoding") ||
		asciiEqualFold(name, "Host")
}

// hasTrailers reports whether a TE header value lists trailers (any case), the one TE
// token forwarded: it tells the backend the client takes trailers.
func hasTrailers(v string) bool {
	for v != "" {
		var tok string
		tok, v, _ = strings.Cut(v, ",")
		if asciiEqualFold(trimOWS(tok), "trailers") {
			return true
		}
	}
	return false
}
