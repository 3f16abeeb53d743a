// Package fastpath serves HTTP/1.x connections and forwards their requests to backends
// without net/http on the request path: the fast path of slipway's proxy. It knows nothing
// of routing tables, splits, stickiness or metrics; a Router, which package proxy
// implements, decides once per request where the request goes. Start reading at Serve
// (serve.go) and the contract (router.go), then conn.go (one client connection, one
// request after another) and conn_raw.go (the same, in steady state, inside one RawConn
// read).
//
// The name says what the package is to the project, the proxy's fast path (as the
// documents call it), rather than what it speaks: it is not a general HTTP/1 server (an
// "h1" package) with a handler API of its own, but a forwarder that takes only the requests
// it can carry faster than net/http and hands everything else to net/http, whose parsers
// are its differential-fuzzing oracle.
//
// # The contract
//
// Serve(ctx, ln, rt, cfg) serves a listener. For each request the fast path can take, once
// its head is parsed and a body of up to 64 KiB (by Content-Length) read whole, it calls
// rt.Route with the head (a Request: Method, and Header to find fields without
// allocating). Route returns nil to hand the request to net/http (cfg.Handler), or an
// Exchange, which names the backend (an Upstream, which the Router keeps per backend: its
// address, a logger, and the keep-alive connections to it), the header lines the answer
// carries besides the backend's, and the body of the 503 answered when there is no
// backend; which is asked for another backend when one fails before answering (Retry,
// with whether the request can be sent again); and which is told the status the client
// got and when the request started and ended (Done). That is a handful of interface calls
// per request and none per byte; Route and the Exchange may allocate nothing, as package
// proxy's do.
//
// # Serving a connection
//
// One goroutine per client connection reads each request head into its own buffer, asks
// the Router where it goes, writes it to a pooled keep-alive connection to the backend in
// one write (head and a small body), reads the answer in the same goroutine and copies it
// back, flushing whenever the backend has nothing more buffered: a small response leaves
// in one write, SSE and other streams as they come. Bodies go by Content-Length, chunked
// (read as strictly as net/http's chunked reader reads them and re-framed: sizes in plain
// hex, extensions dropped, trailers kept; a malformed request body is answered 502 as
// net/http's forwarder answers it) or until the backend closes (re-chunked); HTTP/1.0
// clients get decoded bodies and a closed connection when the length is unknown. A
// request body read whole can be sent again; a larger or chunked one streams and is never
// sent twice, as a body without GetBody through net/http's forwarder. A pooled backend
// connection that fails before any answer byte is retried once on a new connection when
// that is safe (as net/http's transport does), and every idle one is checked before it is
// used again: one the backend closed, or on which it sent anything after the end of its
// last answer, is dropped, as is one whose answer left bytes unread.
//
// Anything else goes to net/http on the same connection, with the bytes read so far
// replayed first: HTTP/2 with prior knowledge (h2c), Upgrade (WebSocket), Expect,
// transfer codings other than chunked, targets that are not origin-form, a Connection
// header that lists Content-Length, Transfer-Encoding or Host, any head the fast path's
// strict parser does not accept (net/http then answers 400, or serves it), and what the
// Router hands over. The parser accepts no head net/http would refuse, and reads every
// head it accepts as net/http reads it (where it ends, method, target, Host, framing, the
// fields passed on); so do the chunked-body and response-head readers. A head over
// net/http's limit (1 MiB and 4 KiB) is answered 431 as net/http answers it. The decision
// is per request; after the hand-off the connection belongs to an internal http.Server
// (cfg.Handler, HTTP/1.1 and h2c) for good.
//
// # System calls
//
// A forwarded request costs two reads and two writes, none that returns EAGAIN, and the
// peek that checks the backend connection it reuses (see above). Go's net.Conn.Read tries
// a read before it waits, and a read that starts forgets what the runtime knew of the
// socket's readiness; so the read that follows a write (the backend's answer, the client's
// next request) would find nothing once per request on each side. The fast path avoids
// both: the request to a backend is written inside the RawConn read of its answer, after
// the runtime reset the readiness, so the read waits first (roundtrip.go); and a client
// connection is served, in steady state, inside one RawConn read of it that spans
// requests, where readiness is kept between the callback's calls, so after a response it
// waits for the next request without trying first (conn_raw.go). Anything unusual (a head
// in several reads, a body to stream, a hand-off, shutdown) leaves that read for the
// ordinary loop for one request. On Linux those reads and writes, the peek, and the write
// of the answer to the client (through the connection's RawConn too), are raw system
// calls (sysio_linux.go): on a non-blocking socket they never sleep, so the scheduler need
// not know of them, and a thread the kernel preempts inside one keeps its P rather than
// losing it to the runtime's monitor.
//
// # Limits
//
// Limits are net/http's: a client has 10 s to send a request head, counted from the accept
// for its first request and from the first byte for the others, and 2 minutes idle between
// requests; a head is at most 1 MiB and 4 KiB. A listener holds at most Config.MaxConns
// connections, handed-off ones included; at the bound it accepts no more until one
// closes, and new clients wait in the listen queue.
//
// Differences from net/http's forwarder that remain: a client that goes away while the
// backend prepares its answer is noticed when the answer is written (net/http cancels the
// backend request at once), and the fast path's own 502 and 503 answers carry no Date.
//
// # Stopping a listener
//
// A listening socket may be shared with another server for a moment (a restart in place
// hands it to the next process), so stopping must not drop a request the other server
// would have answered: when Serve's ctx ends it stops accepting, answers every request
// already sent (even in part) with Connection: close, lets a connection accepted less
// than FreshGrace (500 ms) before that send its first request and answers it, and closes
// connections idle after a response (the keep-alive race: clients retry idempotent
// requests). The internal http.Server gets the same: keep-alives off, a wait while a
// handed-off connection serves a request or was just handed over (ConnStates, which
// package handover uses for its own http.Servers), then Shutdown. Connections wait for a
// request in one place (conn.await), where shutdown wakes them by a read deadline, so the
// request path pays nothing for this. Config.ShutdownGrace bounds it all.
//
// # Tests
//
// The differential fuzzers (fuzz_test.go, seeds in testdata/fuzz; make fuzz runs them)
// hold the request-head, chunked-body and response-head readers to net/http's. The
// smuggling suite (smuggle*_test.go, limits_test.go) sends crafted requests and responses
// through a listener to a backend that records every byte it receives
// (recorder_test.go); TestMain runs it twice, through Serve and through net/http's
// httputil.ReverseProxy, which the fast path must match. The tests route with a
// testRouter (helpers_test.go); package proxy's tests cover its Router.
package fastpath
