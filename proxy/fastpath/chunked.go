package fastpath

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
)

// A chunked body is read as strictly as net/http's chunked reader reads it (its rules are
// restated below), and passed on re-framed rather than verbatim: chunk sizes in plain hex,
// extensions dropped, hop-by-hop and framing trailers dropped. So no line the proxy
// accepted can be read differently by the other side: it gets the chunk lines the proxy
// wrote, and only trailer lines the proxy checked. Nothing grows on the way: a body within
// net/http's limits stays within them.

// errBadChunk is a chunked body net/http's reader would refuse.
var errBadChunk = errors.New("malformed chunked body")

const (
	// maxTrailerBytes bounds a body's trailer section with its final empty line (net/http
	// looks for its end within its 4 KiB read buffer).
	maxTrailerBytes = 4096
	// maxChunkExcess bounds the bytes a chunked body spends on framing beyond 16 per chunk
	// and twice its data, as net/http does against a sender that pads chunk lines.
	maxChunkExcess = 16 << 10
)

// copyChunked copies a chunked body with its trailers from src to dst: re-framed, or
// decoded (the data only, for an HTTP/1.0 client). A body net/http would refuse ends the
// copy with errBadChunk (as a readError), before anything of the offending line is written.
func copyChunked(dst *bufio.Writer, src source, reframe bool) error {
	var excess int64
	for {
		line, err := chunkLine(dst, src)
		if err != nil {
			return err
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return readError{errBadChunk}
		}
		excess += int64(len(line)) + 2
		if size < maxChunkExcess {
			excess = max(excess-16-2*size, 0)
		} else {
			excess = 0
		}
		if excess > maxChunkExcess {
			return readError{errBadChunk}
		}
		if size == 0 {
			break
		}
		if reframe {
			var hb [20]byte
			_, _ = dst.Write(strconv.AppendInt(hb[:0], size, 16))
			_, _ = dst.WriteString("\r\n")
		}
		if err := copyN(dst, src, size); err != nil {
			return err
		}
		if err := chunkEnd(dst, src); err != nil {
			return err
		}
		if reframe {
			_, _ = dst.WriteString("\r\n")
		}
	}
	trailers, err := readTrailers(dst, src)
	if err == nil && reframe {
		_, _ = dst.WriteString("0\r\n")
		_, _ = dst.Write(trailers)
		_, err = dst.WriteString("\r\n")
	}
	return err
}

// chunkLine reads a chunk-size or trailer line as net/http does: it ends in CRLF, holds no
// other CR, and is at most maxLineBytes long with its CRLF. It returns the line without it.
func chunkLine(dst *bufio.Writer, src source) ([]byte, error) {
	line, err := readLine(dst, src)
	if err != nil {
		if errors.Is(err, errLineTooLong) || errors.Is(err, bufio.ErrBufferFull) {
			return nil, readError{errBadChunk}
		}
		return nil, err
	}
	n := len(line)
	if n < 2 || n > maxLineBytes || line[n-2] != '\r' || bytes.IndexByte(line[:n-2], '\r') >= 0 {
		return nil, readError{errBadChunk}
	}
	return line[:n-2], nil
}

// chunkEnd reads the CRLF that ends a chunk's data: those two bytes exactly.
func chunkEnd(dst *bufio.Writer, src source) error {
	if src.Buffered() < 2 && dst.Buffered() > 0 {
		if err := dst.Flush(); err != nil {
			return err
		}
	}
	var crlf [2]byte
	if _, err := io.ReadFull(src, crlf[:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return readError{err}
	}
	if crlf != [2]byte{'\r', '\n'} {
		return readError{errBadChunk}
	}
	return nil
}

// parseChunkSize parses a chunk-size line without its CRLF as net/http does: trailing
// spaces and tabs trimmed, then everything from the first ';' (the extensions) dropped,
// then 1 to 16 hex digits and nothing else. The extensions, whatever they hold, are not
// passed on. The fast path also refuses sizes past the int64 range.
func parseChunkSize(line []byte) (int64, bool) {
	line = bytes.TrimRight(line, " \t")
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	if len(line) == 0 || len(line) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range line {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | uint64(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | uint64(c-'A'+10)
		default:
			return 0, false
		}
	}
	if n > math.MaxInt64 {
		return 0, false
	}
	return int64(n), true
}

// readTrailers reads a body's trailer section, up to and including its empty line, and
// returns the trailer lines to pass on, with their CRLF. Each line is a chunkLine with a
// token, a colon and a valid value (no folded line, which net/http would join to the one
// before); the section is at most maxTrailerBytes. Hop-by-hop and framing fields are not
// passed on.
func readTrailers(dst *bufio.Writer, src source) ([]byte, error) {
	var out []byte
	left := maxTrailerBytes
	for {
		line, err := chunkLine(dst, src)
		if err != nil {
			return nil, err
		}
		if left -= len(line) + 2; left < 0 {
			return nil, readError{errBadChunk}
		}
		if len(line) == 0 {
			return out, nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return nil, readError{errBadChunk}
		}
		name := line[:colon]
		if !isToken(name) || !validValue(line[colon+1:]) {
			return nil, readError{errBadChunk}
		}
		if isHopHeader(name) || framingToken(name) || asciiEqualFold(name, "Trailer") {
			continue
		}
		out = append(out, line...) // as received: checked, and no longer than the limit
		out = append(out, "\r\n"...)
	}
}
