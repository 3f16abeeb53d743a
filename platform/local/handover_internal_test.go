package local

import (
	"net"
	"testing"
)

func TestAddrMatches(t *testing.T) {
	tcp := func(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	for _, tc := range []struct {
		want  string
		bound net.Addr
		ok    bool
	}{
		{"127.0.0.1:8080", tcp("127.0.0.1", 8080), true},
		{"127.0.0.1:0", tcp("127.0.0.1", 41234), true},
		{"127.0.0.1:8081", tcp("127.0.0.1", 8080), false},
		{"127.0.0.2:8080", tcp("127.0.0.1", 8080), false},
		{":8080", tcp("::", 8080), true},
		{"0.0.0.0:8080", tcp("0.0.0.0", 8080), true},
		{":8080", tcp("127.0.0.1", 8080), false},
		{"not an address", tcp("127.0.0.1", 8080), false},
		{"127.0.0.1:8080", &net.UnixAddr{Name: "/tmp/x", Net: "unix"}, false},
	} {
		if got := addrMatches(tc.want, tc.bound); got != tc.ok {
			t.Errorf("addrMatches(%q, %v) = %v, want %v", tc.want, tc.bound, got, tc.ok)
		}
	}
}

func TestListenerKey_RoundTrips(t *testing.T) {
	for _, tc := range []struct {
		app     string
		preview bool
	}{{"web", false}, {"web", true}, {"a.b_c-d", true}} {
		key := ListenerKey(tc.app, tc.preview)
		app, i, ok := parseListenerKey(key)
		if !ok || app != tc.app || (i == 1) != tc.preview {
			t.Errorf("parseListenerKey(%q) = %q, %d, %v", key, app, i, ok)
		}
	}
	for _, bad := range []string{"web", "web/other", "../x/main", "/main"} {
		if _, _, ok := parseListenerKey(bad); ok {
			t.Errorf("parseListenerKey(%q) accepted a bad key", bad)
		}
	}
}
