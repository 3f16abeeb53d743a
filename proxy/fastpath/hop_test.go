package fastpath

import (
	"fmt"
	"strings"
	"testing"
)

func TestConnTokens(t *testing.T) {
	for _, n := range []int{1, maxScanTokens, maxScanTokens + 1, 500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var tk connTokens
			tk.add("x-old")
			tk.reset() // nothing of an earlier message stays
			var names []string
			for i := range n {
				names = append(names, fmt.Sprintf("X-Hop-%d", i))
			}
			tk.add(strings.Join(names[:n/2], ", ") + ", Keep-Alive")
			tk.add(" ," + strings.Join(names[n/2:], " ,\t") + ",")
			if tk.close || !tk.keepAlive || tk.framing {
				t.Errorf("close %v keepAlive %v framing %v", tk.close, tk.keepAlive, tk.framing)
			}
			for _, name := range names {
				if !listed(&tk, strings.ToLower(name)) || !listed(&tk, []byte(strings.ToUpper(name))) {
					t.Fatalf("%s not listed", name)
				}
			}
			tk.add("x-\u212a") // a Kelvin sign: lower case in Unicode is k, in ASCII it stays
			for _, name := range []string{"x-old", "X-Hop", "X-Hop-" + fmt.Sprint(n), "", strings.Repeat("x", 100), "x-k"} {
				if listed(&tk, name) {
					t.Errorf("%q listed", name)
				}
			}
			tk.add("CLOSE, content-length")
			if !tk.close || !tk.framing {
				t.Errorf("close %v framing %v after close, content-length", tk.close, tk.framing)
			}
		})
	}
}

// TestAppendHead_StripsWhatConnectionLists: every field a Connection header names is left
// out of the head sent to the backend, however many it names; the others go as received.
func TestAppendHead_StripsWhatConnectionLists(t *testing.T) {
	var hop, fields strings.Builder
	for i := range 40 {
		fmt.Fprintf(&hop, "x-hop-%d, ", i)
		fmt.Fprintf(&fields, "X-Hop-%d: h\r\nX-Keep-%d: k\r\n", i, i)
	}
	head := "POST /p HTTP/1.1\r\nHost: shop.test\r\nConnection: " + hop.String() + "keep-alive\r\n" + fields.String() +
		"Te: gzip, trailers\r\nKeep-Alive: 5\r\nX-Forwarded-For: 6.6.6.6\r\nContent-Length: 0\r\n\r\n"
	var r Request
	if !parseRequest(head, &r) {
		t.Fatal("parseRequest refused the head")
	}
	out := string(appendHead(nil, &r, "10.0.0.1", "backend:80"))
	want := "POST /p HTTP/1.1\r\nHost: shop.test\r\n"
	for i := range 40 {
		want += fmt.Sprintf("X-Keep-%d: k\r\n", i)
	}
	want += "Te: trailers\r\nContent-Length: 0\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: shop.test\r\nX-Forwarded-Proto: http\r\n\r\n"
	if out != want {
		t.Errorf("sent\n%q\nwant\n%q", out, want)
	}
}
