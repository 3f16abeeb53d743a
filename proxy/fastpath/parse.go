package fastpath

import (
	"bytes"
	"strings"
)

// Fast-path limits.
const (
	// maxHeadBytes bounds the request head (request line and headers): past it the fast
	// path answers 431 as net/http does (http.DefaultMaxHeaderBytes plus the 4 KiB net/http
	// allows on top). It answers itself rather than hand the head over, since net/http
	// also serving h2c lets the bytes it reads looking for HTTP/2's preface go uncounted.
	maxHeadBytes = 1<<20 + 4096
	// maxReplayBody is the largest request body (by Content-Length) the fast path reads whole
	// before forwarding, so that it can send it again on another backend.
	maxReplayBody = 64 << 10
	// maxLineBytes bounds a chunk-size or trailer line, with its line end (net/http reads
	// them through a 4 KiB buffer).
	maxLineBytes = 4096
)

// field is one request header line: name as received, value trimmed.
type field struct{ name, value string }

// Request is a request head parsed by the fast path, as a Router reads it. Its strings
// point into head, one copy of the bytes received, so that routing can read them while the
// read buffer moves on.
type Request struct {
	head    string
	method  string
	target  string // origin-form: starts with '/'
	proto   int    // 10 or 11
	fields  []field
	host    string
	hasHost bool
	length  int64 // Content-Length; -1 when absent
	chunked bool  // Transfer-Encoding: chunked
	close   bool  // the client wants the connection closed after this request
	ka10    bool  // HTTP/1.0 with Connection: keep-alive
	conn    connTokens
}

// Method returns the request's method.
func (r *Request) Method() string { return r.method }

// Header returns the value of the first field named key (any case) at index from or after
// it, in the order received, and its index (-1 when there is none): the values of a key
// one by one, each found once, as Header(key, i+1) goes on from index i.
func (r *Request) Header(key string, from int) (string, int) {
	for j := from; j < len(r.fields); j++ {
		if asciiEqualFold(r.fields[j].name, key) {
			return r.fields[j].value, j
		}
	}
	return "", -1
}

// hasBody reports whether a body follows the head.
func (r *Request) hasBody() bool { return r.chunked || r.length > 0 }

// headEnd returns the length of the head at the start of b (up to and including the empty
// line that ends it), or -1 when b does not hold a whole head yet. from is where to resume
// the search (a previous call's len(b)).
func headEnd(b []byte, from int) int {
	i := max(from-3, 0)
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
}

// parseRequest parses head (as found by headEnd) into r. It reports false for anything the
// fast path leaves to net/http: a malformed or unusual head (net/http answers it as it
// always did), HTTP/2's preface, upgrades, Expect, transfer codings other than chunked,
// targets that are not origin-form, CONNECT, and a Connection header that lists a header
// the message's framing or routing depends on (framingToken).
func parseRequest(head string, r *Request) bool {
	conn := r.conn
	conn.reset()
	*r = Request{head: head, length: -1, fields: r.fields[:0], conn: conn}
	line, rest, ok := cutLine(head)
	if !ok {
		return false
	}
	sp1 := strings.IndexByte(line, ' ')
	if sp1 <= 0 {
		return false
	}
	sp2 := strings.IndexByte(line[sp1+1:], ' ')
	if sp2 <= 0 {
		return false
	}
	r.method, r.target = line[:sp1], line[sp1+1:sp1+1+sp2]
	switch line[sp1+1+sp2+1:] {
	case "HTTP/1.1":
		r.proto = 11
	case "HTTP/1.0":
		r.proto = 10
	default:
		return false
	}
	if !isToken(r.method) || r.method == "CONNECT" || r.method == "PRI" {
		return false
	}
	if r.target[0] != '/' {
		return false
	}
	if !validTarget(r.target) {
		return false
	}
	hosts, lengths, tes := 0, 0, 0
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return false
		}
		if line == "" {
			break
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return false
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if !isToken(name) || !validValue(value) {
			return false
		}
		switch {
		case asciiEqualFold(name, "Host"):
			hosts++
			r.host, r.hasHost = value, true
			if !validHost(value) {
				return false
			}
		case asciiEqualFold(name, "Content-Length"):
			lengths++
			n, ok := parseLength(value)
			if !ok {
				return false
			}
			r.length = n
		case asciiEqualFold(name, "Transfer-Encoding"):
			tes++
			if !asciiEqualFold(value, "chunked") {
				return false
			}
			r.chunked = true
		case asciiEqualFold(name, "Connection"):
			r.conn.add(value)
		case asciiEqualFold(name, "Upgrade"), asciiEqualFold(name, "Expect"),
			asciiEqualFold(name, "HTTP2-Settings"):
			return false
		}
		r.fields = append(r.fields, field{name: name, value: value})
	}
	if hosts > 1 || (hosts == 0 && r.proto == 11) || lengths > 1 || tes > 1 ||
		(tes > 0 && (lengths > 0 || r.proto == 10)) {
		return false
	}
	if r.conn.framing {
		return false
	}
	switch {
	case r.conn.close:
		r.close = true
	case r.proto == 10:
		r.ka10 = r.conn.keepAlive
		r.close = !r.ka10
	}
	return true
}

// cutLine splits s at its first CRLF; lines must end in CRLF.
func cutLine(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 1 || s[i-1] != '\r' {
		return "", "", false
	}
	return s[:i-1], s[i+1:], true
}

// validTarget reports whether an origin-form target holds only visible ASCII and, in its
// path, only well-formed percent escapes: what url.ParseRequestURI, which net/http parses
// a target with, accepts (it does not check the query's escapes).
func validTarget(s string) bool {
	query := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ' || c >= 0x7f:
			return false
		case c == '?':
			query = true
		case c == '%' && !query:
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
		}
	}
	return true
}

// isHex reports whether c is a hex digit.
func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// trimOWS trims spaces and tabs on both ends.
func trimOWS[T string | []byte](s T) T {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken[T string | []byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || !tokenChars[c] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// validValue reports whether a header value holds no control character but tab.
func validValue[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost accepts the plain host[:port] forms (names, IPv4, bracketed IPv6); anything
// else goes to net/http, which judges it.
func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length value: decimal digits only, at most 18 of them.
func parseLength[T string | []byte](s T) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// trimEOL strips a trailing "\r\n" or "\n".
func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}
