package httpapi

// The client's streams (events, followed logs) and how they outlive a broken connection.
//
// A stream that was up once and then breaks (the server restarts in place, is stopped and
// started again, or the connection is reset), or that cannot connect at first although the
// server answered an earlier request of the same client, connects again with a capped
// exponential backoff and resumes exactly where it stopped: an event stream after the last
// event it delivered (Last-Event-ID), a log stream after the last lines it wrote (the log
// cursor, see logs.go). What decides whether to try again is Transient: a server that
// cannot be reached, a connection that broke, a stream the server ended, and 502, 503 and
// 504 answers are worth another attempt; an answer that refuses the request (400, 401, 404)
// is not.
//
// A connection can also die without breaking: the server's host vanished, a NAT or firewall
// forgot the mapping, the TCP connection is half open. Nothing then tells the client, so a
// stream that has received nothing at all for Reconnect.Idle (the server sends a comment
// every Heartbeat while it has nothing else to send) is taken as broken: its connection is
// closed and it goes on like any other break (see idleWatch).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"slipway.dev/slipway"
)

// Reconnect backoff: the first attempt after a break waits about reconnectMin, each later
// one twice as long up to reconnectMax. Each wait is drawn between half and all of that, so
// that the many clients of a restarted server do not come back in step.
const (
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 2 * time.Second
)

// DefaultIdle is how long a stream may receive nothing at all before the client takes its
// connection as broken, when Reconnect.Idle is 0 (or without SetReconnect). A server with
// the default Heartbeat sends something at least every DefaultHeartbeat, so three of them
// leave room for a late heartbeat (a slow store, a busy proxy) without waiting long on a
// dead connection.
const DefaultIdle = 3 * DefaultHeartbeat

// Reconnect says how the client's streams (StreamEvents, FollowEvents, Logs with follow)
// outlive a broken connection. Without SetReconnect a stream ends at the first break.
type Reconnect struct {
	// Timeout is how long a stream keeps trying to connect again after its connection
	// broke; then it ends with the error that broke it. 0 means it never gives up.
	Timeout time.Duration
	// Lost, when set, is called once when a stream's connection breaks, with why.
	Lost func(err error)
	// Back, when set, is called once when the stream is connected again.
	Back func()
	// Idle is how long a stream may receive nothing at all (no event, no heartbeat
	// comment, no log line; counted while the client waits for the server, not while the
	// stream's callback runs) before its connection is taken as broken: the client closes
	// it, tells Lost and connects again as after any other break. 0 means DefaultIdle
	// (3 x DefaultHeartbeat); a negative Idle never takes a silent stream as broken. Keep it
	// a few times the server's Heartbeat: a server configured with a longer Heartbeat than
	// DefaultHeartbeat needs a longer Idle, or its quiet streams are reconnected for
	// nothing. Streams without SetReconnect use DefaultIdle too, and end at the silence.
	Idle time.Duration
}

// SetReconnect lets the client's streams connect again after their connection broke. Call
// it before the client is used.
func (c *Client) SetReconnect(r Reconnect) { c.reconnect = &r }

// unavailable marks an error after which the same request may succeed later.
type unavailable struct{ err error }

func (u *unavailable) Error() string { return u.err.Error() }
func (u *unavailable) Unwrap() error { return u.err }

// Transient reports whether err says the server was unavailable rather than that it
// refused the request: it could not be reached, the connection to it broke, a stream ended
// without the client asking, or it (or a proxy before it) answered 502, 503 or 504. The
// same request may succeed later.
func Transient(err error) bool {
	var u *unavailable
	return errors.As(err, &u)
}

// StreamEvents follows the event stream from f.After (f.App and f.Rollout filter it; f.Limit
// is ignored) and calls fn with each event in order. It returns nil when ctx ends, fn's error
// when fn fails, and an error when the stream breaks, unless SetReconnect lets it connect
// again.
func (c *Client) StreamEvents(ctx context.Context, f slipway.EventFilter, fn func(slipway.Event) error) error {
	return c.FollowEvents(ctx, f, fn, nil)
}

// FollowEvents is StreamEvents for a caller that also reads state besides the events (a
// status it redraws on each event): after each reconnect, before the events the break hid
// are delivered, it calls resync (when not nil), whose error ends the stream like fn's.
//
// Each event is delivered once: after a reconnect the stream resumes after the last event
// fn accepted. When fn fails with a Transient error (it read from a server that went away
// meanwhile), that is a broken connection too: with SetReconnect the same event is
// delivered again once the stream is back.
func (c *Client) FollowEvents(ctx context.Context, f slipway.EventFilter, fn func(slipway.Event) error, resync func() error) error {
	open := func() (string, string) { return "/api/v1/events/stream?" + filterQuery(f, false).Encode(), "" }
	return c.follow(ctx, "event stream", resync, open, func(resp *http.Response) error {
		err := readStream(resp.Body, func(e slipway.Event) error {
			if e.Seq <= f.After {
				return nil // delivered before the break
			}
			if err := fn(e); err != nil {
				return err
			}
			f.After = e.Seq
			return nil
		})
		return streamEnded(ctx, err)
	})
}

// follow keeps one stream going across connections until ctx ends (nil) or it fails for
// good. Each connection asks for the path and Last-Event-ID open returns (where the stream
// has got to) and, once the server has answered 200, read reads it until it ends. When a
// connection fails with a Transient error after the stream was up once, or after the server answered any
// request of the client (a command that read some state, then opens its stream, meets a
// server that went away in between, not a wrong address), and SetReconnect allows it,
// follow waits (backoff) and connects again, telling Reconnect.Lost and Back, and calling
// resync once it is back.
func (c *Client) follow(ctx context.Context, what string, resync func() error, open func() (path, lastID string), read func(*http.Response) error) error {
	var (
		wasUp  bool
		lostAt time.Time // zero while connected
		wait   = reconnectMin
	)
	r := c.reconnect
	up := func() error {
		wasUp = true
		if lostAt.IsZero() {
			return nil
		}
		lostAt, wait = time.Time{}, reconnectMin
		if r.Back != nil {
			r.Back()
		}
		if resync != nil {
			return resync()
		}
		return nil
	}
	connect := func() error {
		path, lastID := open()
		resp, err := c.openStream(ctx, path, lastID)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		defer resp.Body.Close()
		if err := up(); err != nil {
			return err
		}
		return read(resp)
	}
	for {
		err := connect()
		if err == nil || r == nil || (!wasUp && !c.reached.Load()) || !Transient(err) || ctx.Err() != nil {
			return err
		}
		if lostAt.IsZero() {
			lostAt = time.Now()
			if r.Lost != nil {
				r.Lost(err)
			}
		}
		d := wait/2 + rand.N(wait/2+1)
		if r.Timeout > 0 {
			left := r.Timeout - time.Since(lostAt)
			if left <= 0 {
				return fmt.Errorf("%s: no connection to the slipway server at %s for %s: %w", what, c.base, r.Timeout, err)
			}
			d = min(d, left)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, reconnectMax)
	}
}

// openStream asks for a stream (server-sent events) and returns its 200 answer. lastID,
// when set, is sent as Last-Event-ID so that the stream resumes after it. Waiting for the
// answer and each read of its body are bounded by the client's idle timeout (idleWatch): a
// stream that stays silent fails with a transient error. Closing the body stops the watch.
func (c *Client) openStream(ctx context.Context, path, lastID string) (*http.Response, error) {
	w := newIdleWatch(ctx, c.idle())
	req, err := c.request(w.ctx, http.MethodGet, path, nil)
	if err != nil {
		w.stop()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	// A stream's connection is not kept for another request: after the server ended the
	// stream (it is stopping) the next request must find the server that runs now.
	req.Close = true
	w.arm()
	resp, err := c.hc.Do(req)
	w.disarm()
	if err != nil {
		if silent := w.silent(); silent != nil && ctx.Err() == nil {
			err = silent
		}
		w.stop()
		return nil, c.unreachable(err)
	}
	c.reached.Store(true)
	c.noteVersion(resp)
	if resp.StatusCode != http.StatusOK {
		defer w.stop()
		defer resp.Body.Close()
		return nil, answerError(resp)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// Only an event stream promises heartbeats (a log stream sent as plain text does
		// not): its silence says nothing about the connection.
		w.idle = 0
	}
	resp.Body = &idleBody{body: resp.Body, w: w}
	return resp, nil
}

// idle is how long the client's streams may stay silent; 0 for no limit.
func (c *Client) idle() time.Duration {
	switch {
	case c.reconnect == nil || c.reconnect.Idle == 0:
		return DefaultIdle
	case c.reconnect.Idle < 0:
		return 0
	}
	return c.reconnect.Idle
}

// idleWatch takes one stream connection as broken when it receives nothing for idle. It
// is armed only while the client waits for the server (for the answer, then inside each
// read of the body), so that a slow callback between reads is not mistaken for a silent
// server; when it fires, it cancels the connection's context, which aborts the wait. One
// timer per connection, reset on each read: no goroutine waits beside the stream.
type idleWatch struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	idle   time.Duration // 0: never armed
	timer  *time.Timer   // nil until first armed
}

func newIdleWatch(parent context.Context, idle time.Duration) *idleWatch {
	ctx, cancel := context.WithCancelCause(parent)
	return &idleWatch{ctx: ctx, cancel: cancel, idle: idle}
}

// arm starts counting the silence. arm, disarm and stop are called by the goroutine that
// reads the stream; only the timer's function runs elsewhere, and it only cancels.
func (w *idleWatch) arm() {
	switch {
	case w.idle <= 0:
	case w.timer == nil:
		silence := &silenceError{idle: w.idle} // the timer's goroutine reads only this and cancel
		w.timer = time.AfterFunc(w.idle, func() { w.cancel(silence) })
	default:
		w.timer.Reset(w.idle)
	}
}

func (w *idleWatch) disarm() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// silent returns the silenceError when the watch fired, else nil.
func (w *idleWatch) silent() error {
	var s *silenceError
	if errors.As(context.Cause(w.ctx), &s) {
		return s
	}
	return nil
}

// stop ends the watch for good: its timer will not fire, and its context is released.
func (w *idleWatch) stop() {
	w.disarm()
	w.cancel(context.Canceled)
}

// silenceError is why a silent stream's connection was closed.
type silenceError struct{ idle time.Duration }

func (e *silenceError) Error() string {
	return fmt.Sprintf("nothing received from the server for %s, not even a heartbeat", e.idle)
}

// idleBody is a stream's body under an idleWatch: each read is bounded by the watch, and a
// read the watch cut short fails with the silenceError.
type idleBody struct {
	body io.ReadCloser
	w    *idleWatch
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.w.arm()
	n, err := b.body.Read(p)
	b.w.disarm()
	if err != nil {
		if silent := b.w.silent(); silent != nil {
			err = silent
		}
	}
	return n, err
}

func (b *idleBody) Close() error {
	err := b.body.Close()
	b.w.stop()
	return err
}

// fnError carries the callback's error out of readStream untouched.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// streamEnded is what one connection of a followed stream returns once reading it ended
// with err: the callback's own error as it is, nil when ctx ended (the caller stopped), else
// err (a break, which follow may retry).
func streamEnded(ctx context.Context, err error) error {
	var fe fnError
	switch {
	case errors.As(err, &fe):
		return fe.err
	case ctx.Err() != nil:
		return nil //nolint:nilerr // the caller stopped: the break that caused is no failure
	}
	return err
}

// readStream parses server-sent events from r and calls fn for each "data" payload. A frame
// cut short by the end of the stream is not delivered. It returns fn's error as an fnError;
// the end of the stream and a broken connection are transient errors.
func readStream(r io.Reader, fn func(slipway.Event) error) error {
	return readSSE(r, "event", MaxBodyBytes, func(data []byte, _ string) error {
		if len(data) == 0 {
			return nil
		}
		var e slipway.Event
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		if err := fn(e); err != nil {
			return fnError{err}
		}
		return nil
	})
}

// readSSE reads server-sent events from r (the event or log stream: what names it in
// errors) and calls fn with each event's data lines, each ending in a newline, and its id,
// for every event that has either. A line longer than limit bytes (0: no limit) is an error.
// An event cut short by the end of the stream is not delivered. fn's error is returned as it
// is; the end of the stream and a broken connection are transient errors.
func readSSE(r io.Reader, what string, limit int, fn func(data []byte, id string) error) error {
	br := bufio.NewReader(r)
	var data []byte
	var id string
	for {
		line, err := br.ReadBytes('\n')
		if limit > 0 && len(line) > limit {
			return fmt.Errorf("read %s stream: a line is longer than %d bytes", what, limit)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return &unavailable{fmt.Errorf("the server closed the %s stream", what)}
			}
			return &unavailable{fmt.Errorf("read %s stream: %w", what, err)}
		}
		line = line[:len(line)-1]
		switch {
		case len(line) == 0:
			if id != "" || len(data) > 0 {
				if err := fn(data, id); err != nil {
					return err
				}
			}
			data, id = data[:0], ""
		case line[0] == ':':
			// comment (heartbeat)
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data, bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))...)
			data = append(data, '\n')
		case bytes.HasPrefix(line, []byte("id:")):
			id = strings.TrimSpace(string(bytes.TrimPrefix(line, []byte("id:"))))
		}
	}
}
