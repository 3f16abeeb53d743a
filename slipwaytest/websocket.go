package slipwaytest

import (
	"bufio"
	"context"
	"crypto/sha1" //nolint:gosec // G505: the WebSocket handshake is defined with SHA-1 (RFC 6455)
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// WebSocketEcho is an http.HandlerFunc that completes a WebSocket handshake by hand, then
// echoes the raw bytes it reads (no framing), for tests of proxies that pass upgrades on.
// A request that asks for no upgrade gets 400.
func WebSocketEcho(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "want a WebSocket upgrade", http.StatusBadRequest)
		return
	}
	key := r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
	sum := sha1.Sum([]byte(key)) //nolint:gosec // G401: as the import says
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(sum[:]))
	if brw.Flush() == nil {
		_, _ = io.Copy(conn, brw)
	}
}

// DialWebSocketEcho dials addr, asks for a WebSocket upgrade of /ws (Host host) and checks
// that WebSocketEcho answers it: 101 with the Sec-WebSocket-Accept of the key sent, then
// two messages echoed. It fails tb otherwise, and returns the connection still open (it is
// closed at tb's cleanup, if not before).
func DialWebSocketEcho(tb testing.TB, addr, host string) net.Conn {
	tb.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		tb.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host)
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatalf("handshake: %v", err)
	}
	_ = res.Body.Close() // a 101 has none: what follows is the echo
	// The accept value of that key, from RFC 6455's example.
	if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		tb.Fatalf("handshake: %d %v, want 101 with the backend's Sec-WebSocket-Accept", res.StatusCode, res.Header)
	}
	for _, msg := range []string{"hello", "again"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			tb.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			tb.Fatalf("echo: %q %v, want %q", buf, err, msg)
		}
	}
	return conn
}
