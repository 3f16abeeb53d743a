package fastpath

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

// The differential fuzzers: the fast path's parsers against net/http's as the oracle. Each
// fails when the fast path accepts what net/http refuses, or reads it differently in any way
// that matters to a backend or a client: where the message ends, its method, target and
// Host, its framing, whether the connection closes, and the fields passed on. The fast path
// may refuse more (it hands the request to net/http, or answers 502). The seed corpus in
// testdata/fuzz holds the reproductions of the smuggling suite.

// netHTTPRequest reads a request head as net/http's server does: http.ReadRequest and the
// server's own checks (net/http's conn.readRequest). It returns the request and how many
// bytes of s its head took.
func netHTTPRequest(s string) (*http.Request, int, error) {
	sr := strings.NewReader(s)
	br := bufio.NewReaderSize(sr, 4096)
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, 0, err
	}
	used := len(s) - sr.Len() - br.Buffered()
	hosts, haveHost := rawHeader(s[:used])["Host"] // ReadRequest moves Host out of the header
	switch {
	case req.ProtoMajor != 1:
		return nil, 0, errors.New("unsupported protocol version")
	case req.ProtoAtLeast(1, 1) && (!haveHost || len(hosts) == 0) && req.Method != http.MethodConnect:
		return nil, 0, errors.New("missing required Host header")
	case len(hosts) == 1 && !validHostHeader(hosts[0]):
		return nil, 0, errors.New("malformed Host header")
	}
	return req, used, nil
}

// rawHeader returns the fields of a head as net/http reads them, before it takes any out
// (ReadRequest moves Host, ReadResponse drops a Connection header that says close).
func rawHeader(head string) http.Header {
	tp := textproto.NewReader(bufio.NewReader(strings.NewReader(head)))
	if _, err := tp.ReadLine(); err != nil {
		return nil
	}
	h, _ := tp.ReadMIMEHeader()
	return http.Header(h)
}

// validHostHeader is httpguts.ValidHostHeader, which net/http's server applies to Host.
func validHostHeader(h string) bool {
	for i := 0; i < len(h); i++ {
		if !validHostByte[h[i]] {
			return false
		}
	}
	return true
}

// validHostByte is httpguts' set of the bytes a Host header may hold.
var validHostByte = func() (t [256]bool) {
	for _, c := range "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!$%&'()*+,-.:;=[]_~" {
		t[c] = true
	}
	return t
}()

// netHTTPHop are the headers httputil.ReverseProxy does not pass on (its hopHeaders), and
// the forwarding headers it sets itself.
var netHTTPHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// forwardedHeader returns h as httputil.ReverseProxy passes it on (without the fields the
// Connection header lists, the hop-by-hop ones and the forwarding ones), less the framing
// fields and Trailer, which each side writes its own way. conn is the Connection header as
// received (net/http drops one that says close from a response before its forwarder sees
// it, and so passes on what it lists: the fast path does not).
func forwardedHeader(h http.Header, conn []string) http.Header {
	out := h.Clone()
	for _, v := range conn {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = textproto.TrimString(tok); tok != "" {
				out.Del(tok)
			}
		}
	}
	for _, k := range append(netHTTPHop, "Content-Length", "Host") {
		out.Del(k)
	}
	return out
}

func FuzzRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
		"PUT /y HTTP/1.1\r\nHost: b:80\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1; b=2\r\nX-Forwarded-For: 1.2.3.4\r\nTe: gzip, trailers\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-a, keep-alive\r\nX-A: 1\r\nX-B: 2\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: 55\r\n\r\nPOST /capture HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\r\nConnection: Host\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n",
		"GET /a HTTP/1.1\nHost: x\n\n",
		"GET /a HTTP/1.1\r\nHost: x\rX: 1\r\n\r\n",
		"GET /% HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a%2fb?c=% HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := headEnd([]byte(s), 0)
		if n < 0 || n > maxHeadBytes {
			return
		}
		head := s[:n]
		var r Request
		if !parseRequest(head, &r) {
			return
		}
		req, used, err := netHTTPRequest(s)
		if err != nil {
			t.Fatalf("the fast path accepts %q, net/http refuses it: %v", head, err)
		}
		if used != n {
			t.Fatalf("%q: the fast path reads a head of %d bytes, net/http of %d", s, n, used)
		}
		length, chunked := req.ContentLength, len(req.TransferEncoding) > 0
		fastLength := max(r.length, 0)
		if r.chunked {
			fastLength = -1
		}
		if req.Method != r.method || req.RequestURI != r.target || req.Host != r.host ||
			length != fastLength || chunked != r.chunked || req.Close != r.close {
			t.Fatalf("%q: the fast path reads %s %s host %q length %d chunked %v close %v; net/http %s %s host %q length %d TE %v close %v",
				head, r.method, r.target, r.host, r.length, r.chunked, r.close,
				req.Method, req.RequestURI, req.Host, req.ContentLength, req.TransferEncoding, req.Close)
		}
		// The head sent to the backend, read back by net/http: the same request, framed the
		// same way, with the fields net/http's forwarder would pass on.
		out := string(appendHead(nil, &r, "10.0.0.1", "backend:80"))
		sent, _, err := netHTTPRequest(out)
		if err != nil {
			t.Fatalf("%q: the fast path sends %q, which net/http refuses: %v", head, out, err)
		}
		if !r.hasHost {
			req.Host = "backend:80"
		}
		if sent.Method != req.Method || sent.RequestURI != req.RequestURI || sent.Host != req.Host ||
			sent.ContentLength != length || (len(sent.TransferEncoding) > 0) != chunked {
			t.Fatalf("%q: the fast path sends %q, framed as %s %s host %q length %d TE %v", head, out,
				sent.Method, sent.RequestURI, sent.Host, sent.ContentLength, sent.TransferEncoding)
		}
		want, got := forwardedHeader(req.Header, req.Header["Connection"]), forwardedHeader(sent.Header, sent.Header["Connection"])
		if te := req.Header["Te"]; len(te) > 0 && hasTrailers(strings.Join(te, ",")) {
			want["Te"] = []string{"trailers"}
			got["Te"] = sent.Header["Te"]
		}
		if !maps.EqualFunc(want, got, slices.Equal) {
			t.Fatalf("%q: the fast path passes on %v, net/http %v", head, got, want)
		}
	})
}

// netHTTPChunked decodes a chunked body as net/http does (a response read through a 4 KiB
// buffer, as its server and transport read): the data, the trailers, and how many bytes of
// body the body took.
func netHTTPChunked(body string) (data string, trailer http.Header, used int, err error) {
	const head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	sr := strings.NewReader(head + body)
	br := bufio.NewReaderSize(sr, 4096)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", nil, 0, err
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", nil, 0, err
	}
	return string(b), res.Trailer, len(head) + len(body) - sr.Len() - br.Buffered() - len(head), nil
}

// fastChunked copies body with copyChunked; used is how many bytes of body it took.
func fastChunked(body string, reframe bool) (out string, used int, err error) {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	src := newBytesSource([]byte(body))
	err = copyChunked(w, src, reframe)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	rest, _ := io.Copy(io.Discard, src)
	return b.String(), len(body) - int(rest), err
}

func FuzzChunkedBody(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;ext=1\r\nhello\r\n6 \t\r\n world\r\n0\r\nX-Sum: 42\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"000000000000000a\r\n0123456789\r\n0\r\n\r\n",
		"00000000000000005\r\nhello\r\n0\r\n\r\n",
		"5\nhello\r\n0\r\n\r\n",
		"5\r\nhello\n0\r\n\r\n",
		"5\r\r\nhello\r\n0\r\n\r\n",
		"5;\x01x\r\nhello\r\n0\r\n\r\n",
		"5 ;a=b\r\nhello\r\n0\r\n\r\n",
		"5\r\nhelloXX\r\n0\r\n\r\n",
		"0\r\nbad trailer\r\n\r\n",
		"0\r\nX-A: 1\r\n 2\r\n\r\n",
		"0\r\nX-A: 1\rX-B: 2\r\n\r\n",
		"0\r\nContent-Length: 9\r\nConnection: close\r\n\r\n",
		"1;" + strings.Repeat("e", 2000) + "\r\nx\r\n0\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		out, used, err := fastChunked(body, true)
		if err != nil {
			return
		}
		data, trailer, netUsed, nerr := netHTTPChunked(body)
		if nerr != nil {
			t.Fatalf("the fast path accepts %q, net/http refuses it: %v", body, nerr)
		}
		if used != netUsed {
			t.Fatalf("%q: the fast path reads a body of %d bytes, net/http of %d", body, used, netUsed)
		}
		// What the fast path passes on, read by net/http: the same data and trailers.
		got, gotTrailer, outUsed, err := netHTTPChunked(out)
		if err != nil || outUsed != len(out) {
			t.Fatalf("%q: the fast path sends %q, which net/http reads as %d bytes: %v", body, out, outUsed, err)
		}
		if got != data {
			t.Fatalf("%q: the fast path passes on %q, net/http reads %q", body, got, data)
		}
		for k := range trailer {
			if isHopHeader(k) || framingToken(k) || k == "Trailer" {
				delete(trailer, k)
			}
		}
		if len(trailer) == 0 {
			trailer = nil
		}
		if len(gotTrailer) == 0 {
			gotTrailer = nil
		}
		if !maps.EqualFunc(trailer, gotTrailer, slices.Equal) {
			t.Fatalf("%q: the fast path passes on trailers %v, net/http reads %v", body, gotTrailer, trailer)
		}
		decoded, decUsed, err := fastChunked(body, false)
		if err != nil || decoded != data || decUsed != used {
			t.Fatalf("%q: decoded %q (%d bytes, %v), want %q", body, decoded, decUsed, err, data)
		}
	})
}

func FuzzResponseHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nConnection: x-a, close\r\nX-A: 1\r\nX-B: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: 1\rContent-Length: 0\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nX-A: 1\x00\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nX-A: 1\r\n Content-Length: 9\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length : 9\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var h respHead
		sr := strings.NewReader(s)
		br := bufio.NewReaderSize(sr, upReaderSize)
		if _, err := h.read(br); err != nil {
			return
		}
		used := len(s) - sr.Len() - br.Buffered()
		nsr := strings.NewReader(s)
		nbr := bufio.NewReaderSize(nsr, 4096)
		res, err := http.ReadResponse(nbr, &http.Request{Method: http.MethodGet})
		if err != nil {
			t.Fatalf("the fast path accepts %q, net/http refuses it: %v", s[:used], err)
		}
		if netUsed := len(s) - nsr.Len() - nbr.Buffered(); netUsed != used {
			t.Fatalf("%q: the fast path reads a head of %d bytes, net/http of %d", s, used, netUsed)
		}
		head := s[:used]
		bodyless := h.code < 200 || h.code == http.StatusNoContent || h.code == http.StatusNotModified
		toEOF := !bodyless && !h.chunked && h.length < 0
		if res.StatusCode != h.code || res.Close != (h.close || toEOF) ||
			(!bodyless && (res.ContentLength != h.length || (len(res.TransferEncoding) > 0) != h.chunked)) {
			t.Fatalf("%q: the fast path reads %d length %d chunked %v close %v; net/http %d length %d TE %v close %v",
				head, h.code, h.length, h.chunked, h.close, res.StatusCode, res.ContentLength, res.TransferEncoding, res.Close)
		}
		// The head passed on to the client, read back by net/http: the same status, with the
		// fields net/http's forwarder would pass on.
		var b bytes.Buffer
		c := &conn{bw: bufio.NewWriter(&b)}
		c.writeHead(&h, false, "")
		_, _ = c.bw.WriteString("\r\n")
		_ = c.bw.Flush()
		out := b.String()
		sent, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), &http.Request{Method: http.MethodGet})
		if err != nil {
			t.Fatalf("%q: the fast path sends %q, which net/http reads with %v", head, out, err)
		}
		want := forwardedHeader(res.Header, rawHeader(head)["Connection"])
		got := forwardedHeader(sent.Header, rawHeader(out)["Connection"])
		if sent.StatusCode != res.StatusCode || !maps.EqualFunc(want, got, slices.Equal) {
			t.Fatalf("%q: the fast path passes on %d %v, net/http %d %v", head, sent.StatusCode, got, res.StatusCode, want)
		}
	})
}

// A test of the fuzzers' oracles themselves: each seed of the smuggling reproductions that
// net/http refuses is refused by it here too.
func TestFuzzOracles(t *testing.T) {
	for _, s := range []string{
		"GET /% HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\rX: 1\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x y\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x^y\r\n\r\n",
		"GET /a HTTP/1.1\r\n\r\n",
	} {
		if _, _, err := netHTTPRequest(s); err == nil {
			t.Errorf("netHTTPRequest accepts %q", s)
		}
	}
	for _, s := range []string{"5\nhello\r\n0\r\n\r\n", "0\r\nbad\r\n\r\n", "00000000000000005\r\nhello\r\n0\r\n\r\n"} {
		if _, _, _, err := netHTTPChunked(s); err == nil {
			t.Errorf("netHTTPChunked accepts %q", s)
		}
	}
	if data, tr, used, err := netHTTPChunked("5\r\nhello\r\n0\r\nX: 1\r\n\r\nrest"); err != nil || data != "hello" || tr.Get("X") != "1" || used != 21 {
		t.Errorf("netHTTPChunked: %q %v %d %v", data, tr, used, err)
	}
}
