package fastpath

import "testing"

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name, head string
		ok         bool
		check      func(r *Request) bool
	}{
		{"simple", "GET /a?b=1 HTTP/1.1\r\nHost: shop.test\r\nX-A:  v \r\n\r\n", true, func(r *Request) bool {
			v, _ := r.Header("x-a", 0)
			return r.method == "GET" && r.target == "/a?b=1" && r.host == "shop.test" && v == "v" && !r.close && r.length == -1
		}},
		{"body length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", true, func(r *Request) bool { return r.length == 12 && r.hasBody() }},
		{"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", true, func(r *Request) bool { return r.chunked }},
		{"close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n", true, func(r *Request) bool { return r.close }},
		{"1.0 closes", "GET / HTTP/1.0\r\n\r\n", true, func(r *Request) bool { return r.close && !r.hasHost }},
		{"1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true, func(r *Request) bool { return !r.close && r.ka10 }},
		{"repeated header", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n", true, func(r *Request) bool {
			_, first := r.Header("X-A", 0)
			v, second := r.Header("X-A", first+1)
			_, none := r.Header("X-A", second+1)
			return first == 1 && second == 2 && v == "2" && none == -1
		}},
		{"h2 preface", "PRI * HTTP/2.0\r\n\r\n", false, nil},
		{"upgrade", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", false, nil},
		{"expect", "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", false, nil},
		{"gzip coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, nil},
		{"length and chunked", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", false, nil},
		{"two lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", false, nil},
		{"signed length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", false, nil},
		{"no host", "GET / HTTP/1.1\r\n\r\n", false, nil},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", false, nil},
		{"absolute target", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", false, nil},
		{"connect", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", false, nil},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", false, nil},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", false, nil},
		{"space in name", "GET / HTTP/1.1\r\nHost: a\r\nX A: 1\r\n\r\n", false, nil},
		{"control in value", "GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", false, nil},
		{"HTTP/0.9", "GET /\r\n\r\n", false, nil},
		{"bad escape", "GET /% HTTP/1.1\r\nHost: a\r\n\r\n", false, nil},
		{"short escape", "GET /a%2 HTTP/1.1\r\nHost: a\r\n\r\n", false, nil},
		{"escape not hex", "GET /a%zz?b HTTP/1.1\r\nHost: a\r\n\r\n", false, nil},
		{"escapes", "GET /a%2Fb%20?c=%&d=%zz HTTP/1.1\r\nHost: a\r\n\r\n", true, func(r *Request) bool {
			return r.target == "/a%2Fb%20?c=%&d=%zz"
		}},
		{"chunked with a Kelvin sign", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chun\u212aed\r\n\r\n", false, nil},
		{"close with a long s", "GET / HTTP/1.1\r\nHost: a\r\nConnection: clo\u017fe\r\n\r\n", true, func(r *Request) bool { return !r.close }},
		{"Connection lists Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 1\r\n\r\n", false, nil},
		{"Connection lists Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n", false, nil},
		{"Connection lists Host", "GET / HTTP/1.1\r\nHost: a\r\nConnection: x\r\nConnection: HOST\r\n\r\n", false, nil},
		{"Connection lists other headers", "GET / HTTP/1.1\r\nHost: a\r\nConnection: x-a, keep-alive\r\nX-A: 1\r\n\r\n", true, func(r *Request) bool { return !r.close }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			n := headEnd([]byte(tt.head), 0)
			if n < 0 {
				if tt.ok {
					t.Fatalf("headEnd found no head in %q", tt.head)
				}
				return
			}
			ok := parseRequest(tt.head[:n], &r)
			if ok != tt.ok {
				t.Fatalf("parseRequest = %v, want %v", ok, tt.ok)
			}
			if ok && !tt.check(&r) {
				t.Errorf("parsed %+v", r)
			}
		})
	}
}

func TestHeadEnd(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{
		{"GET / HTTP/1.1\r\n\r\nrest", 18},
		{"GET / HTTP/1.1\r\nA: b\r\n", -1},
		{"GET / HTTP/1.1\n\nrest", 16},
		{"GET / HTTP/1.1\r\n\r", -1},
	} {
		if got := headEnd([]byte(tt.in), 0); got != tt.want {
			t.Errorf("headEnd(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
	// Resuming a search finds the same end.
	b := []byte("GET / HTTP/1.1\r\nA: b\r\n\r\n")
	for from := range len(b) {
		if got := headEnd(b, from); got != len(b) && from < len(b)-3 {
			t.Errorf("headEnd from %d = %d", from, got)
		}
	}
}
