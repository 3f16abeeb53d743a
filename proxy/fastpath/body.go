package fastpath

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"sync"
)

var errLineTooLong = errors.New("line too long")

// bufferSize is the size of the buffers bodies of unknown length are copied through.
const bufferSize = 32 << 10

// BufferPool lends 32 KiB copy buffers (an httputil.BufferPool); it stores array pointers
// so that Put does not allocate. The proxy's net/http path shares the type.
type BufferPool struct{ pool sync.Pool }

// Get returns a buffer of 32 KiB.
func (bp *BufferPool) Get() []byte {
	if b, ok := bp.pool.Get().(*[bufferSize]byte); ok {
		return b[:]
	}
	return new([bufferSize]byte)[:]
}

// Put gives b back; a buffer smaller than 32 KiB is dropped.
func (bp *BufferPool) Put(b []byte) {
	if cap(b) >= bufferSize {
		bp.pool.Put((*[bufferSize]byte)(b[:bufferSize]))
	}
}

// source is where a body is copied from: the client's connection (conn) or a backend's
// (upReader). Buffered and bufferedLine tell whether the next read would block, so that the
// copy flushes what it holds first: data is passed on as it comes (SSE, long polls), and a
// small message leaves in one write.
type source interface {
	io.Reader
	ReadSlice(delim byte) ([]byte, error)
	Buffered() int
	bufferedLine() bool
}

// readError marks a failure to read from the source (as opposed to writing to dst).
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }

// isReadError reports whether err came from the source.
func isReadError(err error) bool {
	var re readError
	return errors.As(err, &re)
}

// copyN copies exactly n bytes from src to dst.
func copyN(dst *bufio.Writer, src source, n int64) error {
	for n > 0 {
		if src.Buffered() == 0 && dst.Buffered() > 0 {
			if err := dst.Flush(); err != nil {
				return err
			}
		}
		b := dst.AvailableBuffer()
		if cap(b) == 0 {
			if err := dst.Flush(); err != nil {
				return err
			}
			b = dst.AvailableBuffer()
		}
		b = b[:min(int64(cap(b)), n)]
		m, err := src.Read(b)
		if m > 0 {
			if _, werr := dst.Write(b[:m]); werr != nil {
				return werr
			}
			n -= int64(m)
		}
		if err != nil && n > 0 {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return readError{err}
		}
	}
	return nil
}

// readLine reads one line from src, flushing dst first when it is not buffered yet.
func readLine(dst *bufio.Writer, src source) ([]byte, error) {
	if !src.bufferedLine() && dst.Buffered() > 0 {
		if err := dst.Flush(); err != nil {
			return nil, err
		}
	}
	line, err := src.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, readError{err}
	}
	return line, nil
}

// copyToEOF copies src to dst until src ends, as chunks when rechunk is set.
func copyToEOF(dst *bufio.Writer, src source, buf []byte, rechunk bool) error {
	for {
		if src.Buffered() == 0 && dst.Buffered() > 0 {
			if err := dst.Flush(); err != nil {
				return err
			}
		}
		m, err := src.Read(buf)
		if m > 0 {
			if rechunk {
				var hb [24]byte
				_, _ = dst.Write(append(strconv.AppendInt(hb[:0], int64(m), 16), '\r', '\n'))
			}
			if _, err := dst.Write(buf[:m]); err != nil {
				return err
			}
			if rechunk {
				_, _ = dst.WriteString("\r\n")
			}
		}
		if errors.Is(err, io.EOF) {
			if rechunk {
				_, _ = dst.WriteString("0\r\n\r\n")
			}
			return nil
		}
		if err != nil {
			return readError{err}
		}
	}
}
