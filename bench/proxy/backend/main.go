// Command backend is the upstream of slipway's proxy benchmark (bench/proxy/run.sh): two HTTP
// listeners on 127.0.0.1 that answer every request with the same small fixed body over
// keep-alive connections, so that what the benchmark measures is the proxy in front of them.
//
//	backend -a 18081 -b 18082 -gomaxprocs 1 -size 64 -for 10m
//
// It exits after -for, or on SIGINT/SIGTERM.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

func main() {
	portA := flag.Int("a", 18081, "port of the first listener (revision a)")
	portB := flag.Int("b", 18082, "port of the second listener (revision b)")
	procs := flag.Int("gomaxprocs", 0, "GOMAXPROCS (0 keeps the runtime's default)")
	size := flag.Int("size", 64, "bytes in the response body")
	life := flag.Duration("for", 10*time.Minute, "exit after this long")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	if err := run(*portA, *portB, *size, *life); err != nil {
		log.Fatal(err)
	}
}

func run(portA, portB, size int, life time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, life)
	defer cancel()

	errc := make(chan error, 2)
	var servers []*http.Server
	for i, port := range []int{portA, portB} {
		ln, err := new(net.ListenConfig).Listen(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		srv := &http.Server{Handler: handler('a'+byte(i), size), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	log.Printf("backend: listening on 127.0.0.1:%d and 127.0.0.1:%d, GOMAXPROCS=%d", portA, portB, runtime.GOMAXPROCS(0))
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shut, cancelShut := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancelShut()
	for _, srv := range servers {
		_ = srv.Shutdown(shut)
	}
	return err
}

// handler answers size bytes of fill ('a' or 'b' by listener, so that a split can be told
// apart) with a fixed Content-Length, so that connections stay open.
func handler(fill byte, size int) http.Handler {
	body := bytes.Repeat([]byte{fill}, size)
	if size > 0 {
		body[size-1] = '\n'
	}
	length := []string{strconv.Itoa(size)}
	ctype := []string{"text/plain"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Length"] = length
		h["Content-Type"] = ctype
		_, _ = w.Write(body)
	})
}
