package httpapi

// The client's streams (events, followed logs) and how they outlive a broken connection.
//
// A stream that was up once and then breaks (the server restarts in place, is stopped and
// started again, or the connection is reset) connects again with a capped exponential
// backoff and resumes exactly where it stopped: an event stream after the last event it
// delivered (Last-Event-ID), a log stream after the last lines it wrote (the log cursor,
// see logs.go). What decides whether to try again is Transient: a server that cannot be
// reached, a connection that broke, a stream the server ended, and 502, 503 and 504 answers
// are worth another attempt; an answer that refuses the request (400, 401, 404) is not.

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
	return c.follow(ctx, "event stream", resync, func(ctx context.Context, up func() error) error {
		path := "/api/v1/events/stream?" + filterQuery(f, false).Encode()
		resp, err := c.openStream(ctx, path, "")
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
		err = readStream(resp.Body, func(e slipway.Event) error {
			if e.Seq <= f.After {
				return nil // delivered before the break
			}
			if err := fn(e); err != nil {
				return err
			}
			f.After = e.Seq
			return nil
		})
		var fe fnError
		switch {
		case errors.As(err, &fe):
			return fe.err
		case ctx.Err() != nil:
			return nil
		}
		return err
	})
}

// follow keeps one stream going across connections until ctx ends (nil) or it fails for
// good. connect makes one connection from where the stream has got to and reads it until it
// ends; it calls up once the server has answered 200, before reading. When connect fails
// with a Transient error after the stream was up once, and SetReconnect allows it, follow
// waits (backoff) and connects again, telling Reconnect.Lost and Back, and calling resync
// once it is back.
func (c *Client) follow(ctx context.Context, what string, resync func() error, connect func(ctx context.Context, up func() error) error) error {
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
	for {
		err := connect(ctx, up)
		if err == nil || r == nil || !wasUp || !Transient(err) || ctx.Err() != nil {
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
// when set, is sent as Last-Event-ID so that the stream resumes after it.
func (c *Client) openStream(ctx context.Context, path, lastID string) (*http.Response, error) {
	req, err := c.request(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	// A stream's connection is not kept for another request: after the server ended the
	// stream (it is stopping) the next request must find the server that runs now.
	req.Close = true
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.unreachable(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, answerError(resp)
	}
	return resp, nil
}

// fnError carries the callback's error out of readStream untouched.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// readStream parses server-sent events from r and calls fn for each "data" payload. A frame
// cut short by the end of the stream is not delivered. It returns fn's error as an fnError;
// the end of the stream and a broken connection are transient errors.
func readStream(r io.Reader, fn func(slipway.Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxBodyBytes)
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if len(data) == 0 {
				continue
			}
			var e slipway.Event
			if err := json.Unmarshal(data, &e); err != nil {
				return fmt.Errorf("decode event: %w", err)
			}
			data = data[:0]
			if err := fn(e); err != nil {
				return fnError{err}
			}
		case line[0] == ':':
			// comment (heartbeat)
		case bytes.HasPrefix(line, []byte("data:")):
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))...)
		}
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return fmt.Errorf("read event stream: a line is longer than %d bytes", MaxBodyBytes)
	case err != nil:
		return &unavailable{fmt.Errorf("read event stream: %w", err)}
	}
	return &unavailable{errors.New("the server closed the event stream")}
}
