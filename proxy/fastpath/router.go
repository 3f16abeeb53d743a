package fastpath

import "time"

// Router decides where the requests of a listener go; the fast path asks it once per
// request, from the goroutine of the request's client connection, once the request's head
// is parsed and its body, when small, read whole. Package proxy's listeners implement it
// with the routing table, the split and the metrics.
type Router interface {
	// Route routes the request whose head is r; r is valid until the request's Exchange
	// is Done. It returns nil to have net/http serve the request instead (Config.Handler,
	// on the same connection, which then belongs to net/http for good).
	Route(r *Request) Exchange
}

// Exchange is one request a Router routed, from Route until Done, which is its last use.
// Its methods are called from the goroutine that called Route: Upstream and
// ResponseHeader once, right after it, Retry when a backend fails, and Done once for
// every Exchange, those answered 503 included (and, once the request is on its way to a
// backend, even when the fast path panics).
type Exchange interface {
	// Upstream returns the backend the request goes to, or nil when no backend is ready:
	// the fast path then answers 503 (with Retry-After: 1) and Unavailable as its body.
	Upstream() *Upstream
	// ResponseHeader returns header lines the response carries besides the backend's (a
	// Set-Cookie, say), each ending in CRLF; "" for none.
	ResponseHeader() string
	// Unavailable returns the body of the 503 answered when Upstream returns nil.
	Unavailable() []byte
	// Retry is called when the request failed on its backend with err before a usable
	// answer came (a dial error, a connection closed or reset, a malformed response head;
	// a kept-alive connection the backend closed as it was reused is first retried on a
	// new one, without asking).
	// replayable reports whether the fast path can send the request again: it has no
	// body, or holds it whole and none of it was streamed. The Router decides whether it
	// does, and returns the backend to try, or nil to answer 502.
	Retry(err error, replayable bool) *Upstream
	// Done ends the exchange: code is the status the client was answered (499 when the
	// client went away before the backend answered; 0 when the fast path panicked before a
	// status was known), start and end bound the request, from its head read to its
	// answer written (the last bytes may still be in the buffer to the client).
	Done(code int, start, end time.Time)
}
