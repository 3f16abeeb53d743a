package fastpath

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

// bytesSource is a source over a byte slice, for the body copy functions.
type bytesSource struct{ *bufio.Reader }

func newBytesSource(b []byte) bytesSource {
	return bytesSource{bufio.NewReaderSize(bytes.NewReader(b), 16<<10)}
}

func (s bytesSource) bufferedLine() bool { return upReader(s).bufferedLine() }

func TestCopyChunked(t *testing.T) {
	for _, tt := range []struct {
		name, in      string
		reframed, dec string // "": refused
	}{
		{"plain", "5\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"extensions dropped, hex normalised", "000A;a=b;c\r\n0123456789\r\n0;x\r\n\r\n", "a\r\n0123456789\r\n0\r\n\r\n", "0123456789"},
		{"trailing space", "5 \t\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"control character in an extension", "5;\x01\x00\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"trailers", "1\r\nx\r\n0\r\nX-Sum:  42 \r\nContent-Length: 9\r\nConnection: close\r\nX-B:\r\n\r\n", "1\r\nx\r\n0\r\nX-Sum:  42 \r\nX-B:\r\n\r\n", "x"},
		{"trailers near the largest size", "1\r\nx\r\n0\r\n" + strings.Repeat("X:"+strings.Repeat("a", 1019)+"\r\n", 4) + "\r\n",
			"1\r\nx\r\n0\r\n" + strings.Repeat("X:"+strings.Repeat("a", 1019)+"\r\n", 4) + "\r\n", "x"},
		{"size of 16 digits", "000000000000000a\r\n0123456789\r\n0\r\n\r\n", "a\r\n0123456789\r\n0\r\n\r\n", "0123456789"},
		{"size of 17 digits", "0000000000000000a\r\n0123456789\r\n0\r\n\r\n", "", ""},
		{"size past int64", "8000000000000000\r\n", "", ""},
		{"space before the extension", "5 ;a\r\nhello\r\n0\r\n\r\n", "", ""},
		{"bare LF", "5\nhello\r\n0\r\n\r\n", "", ""},
		{"bare CR", "5\r\r\nhello\r\n0\r\n\r\n", "", ""},
		{"no CRLF after the data", "5\r\nhelloXX0\r\n\r\n", "", ""},
		{"LF after the data", "5\r\nhello\n0\r\n\r\n", "", ""},
		{"empty size", "\r\nhello\r\n0\r\n\r\n", "", ""},
		{"signed size", "+5\r\nhello\r\n0\r\n\r\n", "", ""},
		{"trailer without a colon", "0\r\nbad\r\n\r\n", "", ""},
		{"folded trailer", "0\r\nX: 1\r\n 2\r\n\r\n", "", ""},
		{"trailer with a bare LF", "0\r\nX: 1\n\r\n", "", ""},
		{"trailer with a control character", "0\r\nX: 1\x01\r\n\r\n", "", ""},
		{"trailer name not a token", "0\r\nX Y: 1\r\n\r\n", "", ""},
		{"trailers too long", "0\r\n" + strings.Repeat("X: "+strings.Repeat("a", maxLineBytes/2)+"\r\n", 2) + "\r\n", "", ""},
		{"line too long", "5;" + strings.Repeat("e", maxLineBytes) + "\r\nhello\r\n0\r\n\r\n", "", ""},
		{"padded chunk lines", strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\nx\r\n", 20) + "0\r\n\r\n", "", ""},
		{"cut short", "5\r\nhel", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, reframe := range []bool{true, false} {
				var out bytes.Buffer
				w := bufio.NewWriter(&out)
				err := copyChunked(w, newBytesSource([]byte(tt.in)), reframe)
				if err == nil {
					err = w.Flush()
				}
				want := tt.dec
				if reframe {
					want = tt.reframed
				}
				switch {
				case want == "" && err == nil:
					t.Errorf("reframe %v: accepted, wrote %q", reframe, out.String())
				case want == "" && !isReadError(err):
					t.Errorf("reframe %v: %v, want a read error", reframe, err)
				case want != "" && (err != nil || out.String() != want):
					t.Errorf("reframe %v: wrote %q, %v; want %q", reframe, out.String(), err, want)
				}
				if want == "" && tt.name != "cut short" && !errors.Is(err, errBadChunk) {
					t.Errorf("reframe %v: %v, want errBadChunk", reframe, err)
				}
			}
		})
	}
}
