// Package logfile reads logs that a process appends to a file, rotated by copy and truncate
// (<file>.1 newest, then .2, ...): the last lines of a file, and the complete lines after a
// byte offset, following a rotation. platform/local keeps its instances' logs so and serves
// them as streams (slipway.LogSource) with it.
package logfile

import (
	"bufio"
	"bytes"
	"io"
	"os"
)

// Tail returns the last n complete lines of the file at path (each without its newline),
// and the offset after them: the file's size.
func Tail(path string, n int) ([][]byte, int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	var lines [][]byte
	if len(b) > 0 {
		lines = bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	}
	return lines[max(0, len(lines)-n):], int64(len(b)), nil
}

// ReadFrom returns the complete lines of the file at path after offset (each without its
// newline) and the offset after them; a partial last line waits for its newline. A file
// shorter than offset was rotated (copied to <path>.1, then truncated): the lines after
// offset are read from the end of <path>.1 when it holds them, then the file from its start.
func ReadFrom(path string, offset int64) ([][]byte, int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, offset, err
	}
	defer func() { _ = fh.Close() }()
	st, err := fh.Stat()
	if err != nil {
		return nil, offset, err
	}
	var lines [][]byte
	if st.Size() < offset {
		lines = rotated(path, offset)
		offset = 0
	}
	if _, err := fh.Seek(offset, io.SeekStart); err != nil {
		return lines, offset, err
	}
	br := bufio.NewReader(fh)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return lines, offset, nil
		}
		offset += int64(len(line))
		lines = append(lines, line[:len(line)-1])
	}
}

// rotated returns what path's newest rotated file (<path>.1) holds after offset, when it is
// at least that long: the lines written after offset and before the rotation. Its last
// line, complete or not, is the last one before the rotation.
func rotated(path string, offset int64) [][]byte {
	fh, err := os.Open(path + ".1")
	if err != nil {
		return nil
	}
	defer func() { _ = fh.Close() }()
	if st, err := fh.Stat(); err != nil || st.Size() <= offset {
		return nil
	}
	if _, err := fh.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	var out [][]byte
	br := bufio.NewReader(fh)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			out = append(out, bytes.TrimSuffix(line, []byte("\n")))
		}
		if err != nil {
			return out
		}
	}
}
