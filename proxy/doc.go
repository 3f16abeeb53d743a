// Package proxy is slipway's traffic-splitting reverse proxy: the data plane of the local
// platform. One Proxy fronts one app; the platform tells it which instances are ready and
// how to split traffic (Update), and asks it to drain an instance before stopping it
// (Drain). Start reading at Proxy.ServeHTTP (proxy.go), then Table (table.go) and Metrics
// (metrics.go); Proxy.Serve (serve.go, conn.go) is the fast path that serves a listener
// without net/http on the request path.
//
// # Handler order
//
// Every request passes through the same stages, in this order:
//
//  1. accounting: the request is counted in flight on its backend and revision, and on the
//     way out its status class and latency are recorded (Prometheus series and the
//     per-second ring behind Metrics.Window);
//  2. route match: the table's header/cookie routes, first match wins (HeaderMatch exact,
//     prefix or regex; a route matches when all its entries do);
//  3. split: with no matching route, the weights pick a revision by the request's bucket,
//     falling back to the next revision in priority order that has a ready instance, then
//     to any other revision of the table that has one: a request is refused (503) only
//     when no revision of the table has a ready instance;
//  4. backend pick: the revision's ready instance with the fewest requests in flight, ties
//     broken at random so that load spreads (above 16 instances, the better of two chosen
//     at random, so that a pick costs the same for any number of instances);
//  5. forward: an httputil.ReverseProxy per backend (Rewrite, X-Forwarded-*, the client's
//     Host kept, responses streamed unbuffered, WebSocket upgrades passed through). When the
//     backend fails before answering and the request can be replayed (no body, or GetBody),
//     it is sent once more to another ready backend, same revision first: always after a
//     dial error (nothing was sent), and for idempotent methods after any other failure.
//     Otherwise the client gets 502.
//
// The preview listener (Proxy.Preview) runs the same stages, but every request goes to the
// table's Preview revision.
//
// # Sticky buckets
//
// Weights are integer percentages in priority order (the engine lists the new revision
// first). Bucket b in 0..99 belongs to the first revision for b in [0, w1), to the second for
// [w1, w1+w2), and so on. With stickiness enabled a request's bucket is the stable hash of
// its user key (FNV-1a 32 with murmur3's finalizer, scaled by (h*100)>>32): the header or
// cookie the app names, else the cookie slipway_<app> that the proxy sets (a random ID,
// HttpOnly, SameSite=Lax, Path=/) when the client has none. Because the new revision owns
// the lowest buckets, raising its weight only ever moves users onto it. Without stickiness
// each request draws a random bucket.
//
// # No lock on the request path
//
// Update validates a Table, then precomputes it (cumulative weights, compiled regexes,
// canonical header keys, per-revision backend slices, metric handles) into an immutable
// value published through an atomic.Pointer. A request loads the pointer once and reads only
// that value and atomics: in-flight counters, metric counters, the per-second ring (whose
// counters carry their second in their high bits, so rolling over is a compare-and-swap).
// Per-request state is pooled, so routing allocates nothing of its own.
//
// Backend state (the in-flight count and the forwarder) is kept by backend ID across tables.
// A request counts itself in and then checks that the table has not been swapped meanwhile;
// if it has, it backs out and picks again from the new table. So once Update returns, a
// backend that left the table keeps only requests that were already running, and Drain
// waits exactly for those.
//
// # Serving a listener: the fast path
//
// Proxy.Serve (ServePreview for the preview listener, ServeWith when the Proxy behind a
// listener changes) accepts connections itself and serves plain HTTP/1.1 and 1.0 without
// net/http: one goroutine per client connection reads each request head into its own
// buffer, routes it by the same code as ServeHTTP (acquire, pickRevision, reacquire,
// retryOn, finish: the stages above, the in-flight counts, Drain and the metrics are
// shared), writes it to a pooled keep-alive connection to the backend in one write (head
// and a small body), reads the answer in the same goroutine and copies it back, flushing
// whenever the backend has nothing more buffered: a small response leaves in one write,
// SSE and other streams as they come. Bodies go by Content-Length, chunked (read as
// strictly as net/http's chunked reader reads them and re-framed: sizes in plain hex,
// extensions dropped, trailers kept; a malformed request body is answered 502 as net/http's
// forwarder answers it) or until the backend closes (re-chunked); HTTP/1.0 clients get
// decoded bodies and a closed connection when the length is unknown. A
// request body of up to 64 KiB (by Content-Length) is read whole first, so it can be sent
// again; a larger or chunked one streams and is never retried, as a body without GetBody
// on the net/http path. A pooled backend connection that fails before any answer byte is
// retried once on a new connection when that is safe (as net/http's transport does), and
// every idle one is checked before it is used again: one the backend closed, or on which
// it sent anything after the end of its last answer, is dropped, as is one whose answer
// left bytes unread.
//
// Anything else goes to net/http on the same connection, with the bytes read so far
// replayed first: HTTP/2 with prior knowledge (h2c), Upgrade (WebSocket), Expect,
// transfer codings other than chunked, targets that are not origin-form, a Connection
// header that lists Content-Length, Transfer-Encoding or Host, and any head the fast
// path's strict parser does not accept (net/http then answers 400 as before, or serves
// it). The parser accepts no head net/http would refuse, and reads every head it accepts
// as net/http reads it (where it ends, method, target, Host, framing, the fields passed
// on); so do the chunked-body and response-head readers: the differential fuzzers in
// fuzz_test.go hold them to that, with net/http's parsers as the oracle. A head over
// net/http's limit (1 MiB and 4 KiB) is answered 431 as net/http answers it. The
// decision is per request; after the hand-off the connection belongs to an internal
// http.Server (Handler: the Proxy, Protocols: Protocols()) for good. With
// Config.Transport set, every connection is handed off, since the fast path speaks
// HTTP/1.1 to backends itself.
//
// System calls: a proxied request costs two reads and two writes, none that returns
// EAGAIN, and the peek that checks the backend connection it reuses (see above). Go's
// net.Conn.Read tries a read before it waits, and a read that starts forgets what the
// runtime knew of the socket's readiness; so the read that follows a write (the backend's
// answer, the client's next request) would find nothing once per request on each side.
// The fast path avoids both: the request to a backend is written inside the RawConn read
// of its answer, after the runtime reset the readiness, so the read waits first
// (roundtrip.go); and a client connection is served, in steady state, inside one RawConn
// read of it that spans requests, where readiness is kept between the callback's calls,
// so after a response it waits for the next request without trying first (conn_raw.go).
// Anything unusual (a head in several reads, a body to stream, a hand-off, shutdown)
// leaves that read for the ordinary loop for one request. On Linux those reads and
// writes, the peek, and the write of the answer to the client (through the connection's
// RawConn too), are raw system calls (sysio_linux.go): on a non-blocking socket they never
// sleep, so the scheduler need not know of them, and a thread the kernel preempts inside
// one keeps its P rather than losing it to the runtime's monitor.
//
// Limits are net/http's: a client has 10 s to send a request head, counted from the accept
// for its first request and from the first byte for the others, and 2 minutes idle between
// requests; a head is at most 1 MiB and 4 KiB. A listener holds at most Config.MaxConns
// connections (DefaultMaxConns), handed-off ones included; at the bound it accepts no more
// until one closes, and new clients wait in the listen queue.
//
// Differences from ServeHTTP that remain: a client that goes away while the backend
// prepares its answer is noticed when the answer is written (net/http cancels the
// backend request at once), and the fast path's own 502 and 503 answers carry no Date.
//
// The local platform serves each app's main and preview listeners this way (ServeWith,
// since a change of stickiness replaces the Proxy).
//
// # Stopping a listener
//
// A listening socket may be shared with another server for a moment (a restart in place
// hands it to the next process), so stopping must not drop a request the other server
// would have answered: when Serve's ctx ends it stops accepting, answers every request
// already sent (even in part) with Connection: close, lets a connection accepted less
// than 500 ms before that send its first request and answers it, and closes connections
// idle after a response (the keep-alive race: clients retry idempotent requests). The
// internal http.Server gets the same: keep-alives off, a wait while a handed-off
// connection serves a request or was just handed over, then Shutdown. Connections wait
// for a request in one place (conn.await), where shutdown wakes them by a read deadline,
// so the request path pays nothing for this. Config.ShutdownGrace bounds it all.
//
// # ServeHTTP, listeners and HTTP/2
//
// ServeHTTP serves a Proxy behind an http.Server whose Protocols allow HTTP/1.1 and
// unencrypted HTTP/2 (Protocols returns that set), so that clients may speak h2c with prior
// knowledge. The proxy speaks HTTP/1.1 to backends by default; for backends that speak h2c
// (gRPC, say), give Config.Transport an *http.Transport whose Protocols hold only
// UnencryptedHTTP2.
package proxy
