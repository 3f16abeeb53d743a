// Package proxy is slipway's traffic-splitting reverse proxy: the data plane of the local
// platform. One Proxy fronts one app; the platform tells it which instances are ready and
// how to split traffic (Update), and asks it to drain an instance before stopping it
// (Drain). Start reading at Proxy.ServeHTTP (proxy.go), then Table (table.go) and Metrics
// (metrics.go); Proxy.Serve (listener.go) serves a listener by package fastpath, the HTTP/1
// fast path that does without net/http on the request path, with this package's routing.
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
// listener changes) serves a listener by package fastpath, which accepts connections
// itself, parses and serves plain HTTP/1.1 and 1.0 without net/http, forwards each request
// to a backend connection it keeps, and hands anything unusual to net/http on the same
// connection (see its documentation). This package is its Router (listener.go): for each
// request, Route runs the same code as ServeHTTP up to the backend pick (acquire,
// pickRevision) and counts the request in; the Exchange it returns (the request's
// reqState) names the backend's fastpath.Upstream, which the backend state keeps across
// tables like the forwarder, adds the sticky cookie to the answer, moves a failed request
// by retryOn and reacquire, and counts it out and records it (finishAt) in Done. So the
// stages above, the in-flight counts, Drain and the metrics are the same on both paths,
// and the fast path knows nothing of them. A Proxy with Config.Transport set hands every
// request over (Route returns nil), since the fast path speaks HTTP/1.1 to backends
// itself; what is handed over is served by the Proxy as an http.Handler.
//
// A listener takes its settings (Config.ShutdownGrace, MaxConns and Log) from the Proxy
// current when it starts. It holds at most Config.MaxConns connections (DefaultMaxConns),
// handed-off ones included, and stops without dropping a request: when Serve's ctx ends
// it answers every request already sent and closes idle connections, within
// Config.ShutdownGrace (fastpath's "Stopping a listener").
//
// The local platform serves each app's main and preview listeners this way (ServeWith,
// since a change of stickiness replaces the Proxy).
//
// # ServeHTTP, listeners and HTTP/2
//
// ServeHTTP serves a Proxy behind an http.Server whose Protocols allow HTTP/1.1 and
// unencrypted HTTP/2 (Protocols returns that set), so that clients may speak h2c with prior
// knowledge. The proxy speaks HTTP/1.1 to backends by default; for backends that speak h2c
// (gRPC, say), give Config.Transport an *http.Transport whose Protocols hold only
// UnencryptedHTTP2.
package proxy
