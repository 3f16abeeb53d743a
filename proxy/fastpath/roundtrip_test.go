//go:build unix

package fastpath

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway/slipwaytest"
)

// backendPair dials a real TCP connection the way the fast path does and returns it with
// the accepted end.
func backendPair(t *testing.T) (up net.Conn, peer *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	up, err = dialBackend(&net.Dialer{Timeout: 5 * time.Second}, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Close() })
	c, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = c.Close() })
	for _, c := range []net.Conn{up, c} {
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	return up, c.(*net.TCPConn)
}

func TestBackendTrip_DeferredWriteThenAnswer(t *testing.T) {
	up, peer := backendPair(t)
	if rawOf(up) == nil {
		t.Fatal("dialBackend kept no syscall.RawConn")
	}
	var x backendTrip
	x.reset(up)
	req := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if !x.deferWrite(req) {
		t.Fatal("deferWrite refused a request on a dialled backend connection")
	}
	done := make(chan error, 1)
	go func() {
		got := make([]byte, len(req))
		if _, err := io.ReadFull(peer, got); err != nil {
			done <- err
			return
		}
		if !bytes.Equal(got, req) {
			done <- errors.New("backend read " + string(got))
			return
		}
		time.Sleep(50 * time.Millisecond) // the proxy side is waiting, not spinning on reads
		_, err := io.WriteString(peer, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		done <- err
	}()
	br := bufio.NewReader(&x)
	var h respHead
	if got, err := h.read(br); err != nil || !got {
		t.Fatalf("read head: got %v, %v", got, err)
	}
	if h.code != 200 || h.length != 2 {
		t.Fatalf("head: code %d length %d", h.code, h.length)
	}
	if x.wrote != len(req) || x.werr != nil {
		t.Fatalf("wrote %d of %d, werr %v", x.wrote, len(req), x.werr)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 2)
	if _, err := io.ReadFull(br, body); err != nil || string(body) != "ok" {
		t.Fatalf("body %q, %v", body, err)
	}
}

// A request larger than the socket buffers can take at once: the deferred write stops at
// EAGAIN and Read writes the rest the usual way before it reads the answer.
func TestBackendTrip_WriteLargerThanSocketBuffers(t *testing.T) {
	up, peer := backendPair(t)
	if rawOf(up) == nil {
		t.Fatal("dialBackend kept no syscall.RawConn")
	}
	if err := up.(*backendConn).Conn.(*net.TCPConn).SetWriteBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	if err := peer.SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	req := append([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4194304\r\n\r\n"), bytes.Repeat([]byte("x"), 4<<20)...)
	var x backendTrip
	x.reset(up)
	if !x.deferWrite(req) {
		t.Fatal("deferWrite refused")
	}
	done := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // let the proxy side fill the buffers first
		n, err := io.CopyN(io.Discard, peer, int64(len(req)))
		if err != nil {
			done <- err
			return
		}
		if n != int64(len(req)) {
			done <- errors.New("short read")
			return
		}
		_, err = io.WriteString(peer, "HTTP/1.1 204 No Content\r\n\r\n")
		done <- err
	}()
	var h respHead
	if _, err := h.read(bufio.NewReader(&x)); err != nil {
		t.Fatalf("read head: %v", err)
	}
	if h.code != 204 {
		t.Fatalf("code %d", h.code)
	}
	if x.wrote != len(req) {
		t.Fatalf("the deferred write wrote %d bytes, want %d (counting the rest written by Read)", x.wrote, len(req))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A backend that reset the connection: the deferred write's error comes out of Read, with
// nothing counted as written, so the fast path may retry on a new connection.
func TestBackendTrip_WriteToResetConnection(t *testing.T) {
	up, peer := backendPair(t)
	if rawOf(up) == nil {
		t.Fatal("dialBackend kept no syscall.RawConn")
	}
	if err := peer.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	_ = peer.Close() // RST
	slipwaytest.Eventually(t, 5*time.Second, "the reset to reach the proxy's side", func() bool { return !alive(up) })
	var x backendTrip
	x.reset(up)
	if !x.deferWrite([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")) {
		t.Fatal("deferWrite refused")
	}
	got, err := new(respHead).read(bufio.NewReader(&x))
	if err == nil || got {
		t.Fatalf("read after a reset: got %v, err %v; want an error and nothing read", got, err)
	}
	if x.werr == nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
		t.Fatalf("err %v: want the write's error, a reset or EOF", err)
	}
	if x.werr != nil && x.wrote != 0 {
		t.Fatalf("werr %v with %d bytes counted as written", x.werr, x.wrote)
	}
	if x.werr != nil && !strings.Contains(x.werr.Error(), "write") {
		t.Fatalf("werr %q does not say it was the write", x.werr)
	}
}

// BenchmarkAlive is the check of an idle backend connection before each reuse (one
// non-blocking peek).
func BenchmarkAlive(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	up, err := dialBackend(&net.Dialer{Timeout: 5 * time.Second}, ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = up.Close() }()
	if peer := <-accepted; peer != nil {
		defer func() { _ = peer.Close() }()
	}
	b.ReportAllocs()
	for b.Loop() {
		if !alive(up) {
			b.Fatal("an idle connection reported not alive")
		}
	}
}

func TestAlive(t *testing.T) {
	up, peer := backendPair(t)
	if !alive(up) {
		t.Fatal("an idle connection reported not alive")
	}
	if _, err := io.WriteString(peer, "x"); err != nil {
		t.Fatal(err)
	}
	slipwaytest.Eventually(t, 5*time.Second, "the byte to be seen", func() bool { return !alive(up) })
	up2, peer2 := backendPair(t)
	_ = peer2.Close()
	slipwaytest.Eventually(t, 5*time.Second, "the close to be seen", func() bool { return !alive(up2) })
	if alive(&net.TCPConn{}) {
		t.Error("a connection dialBackend did not wrap reported alive")
	}
}
