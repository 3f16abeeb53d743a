// Command app is the HTTP server the local platform's tests run as instances. It listens on
// 127.0.0.1:$PORT and answers:
//
//	/        "<VERSION> <PORT> <pid>"
//	/healthz 200, or 503 when FAIL_READY=1
//	/live    200, or 500 when FAIL_LIVE=1
//	/lives   how many requests /live has had
//	/env     the value of the environment variable named by ?name=
//	/cwd     its working directory
//
// An argument -port=N makes it listen on N instead of $PORT (it exits when N is not a number).
// CRASH_AFTER=n makes it exit with status 3 after n requests to /; SLEEP=d makes each request
// to / take d; SPAM=1 writes a 100-byte line to stdout every 5ms. It shuts down gracefully on
// SIGTERM.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	var argv []string // the arguments as the process got them, for GET /args
	for _, a := range os.Args[1:] {
		argv = append(argv, a)
		if v, ok := strings.CutPrefix(a, "-port="); ok {
			if _, err := strconv.Atoi(v); err != nil {
				fmt.Fprintln(os.Stderr, "bad -port:", v)
				os.Exit(2)
			}
			port = v
		}
	}
	version := os.Getenv("VERSION")
	crashAfter, _ := strconv.Atoi(os.Getenv("CRASH_AFTER"))
	sleep, _ := time.ParseDuration(os.Getenv("SLEEP"))
	var served, lives atomic.Int64

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		if sleep > 0 {
			time.Sleep(sleep)
		}
		fmt.Fprintf(w, "%s %s %d\n", version, port, os.Getpid())
		if crashAfter > 0 && n >= int64(crashAfter) {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			fmt.Println("crashing on purpose")
			os.Exit(3)
		}
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.URL.Query().Get("name")))
	})
	mux.HandleFunc("/args", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Join(argv, " "))
	})
	mux.HandleFunc("/cwd", func(w http.ResponseWriter, r *http.Request) {
		wd, _ := os.Getwd()
		fmt.Fprint(w, wd)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if os.Getenv("FAIL_READY") == "1" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/lives", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, lives.Load())
	})
	mux.HandleFunc("/live", func(w http.ResponseWriter, r *http.Request) {
		lives.Add(1)
		if os.Getenv("FAIL_LIVE") == "1" {
			http.Error(w, "dead", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})

	if os.Getenv("SPAM") == "1" {
		go func() {
			line := strings.Repeat("x", 99)
			for {
				fmt.Println(line)
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}

	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	fmt.Printf("app %s listening on %s (pid %d)\n", version, ln.Addr(), os.Getpid())
	srv := &http.Server{Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	<-done
	fmt.Println("app stopped")
}
