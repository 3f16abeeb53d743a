package main

// Text that comes from the server (names, reasons, messages, analysis results, error
// messages, instance logs) is data, not terminal commands. A string with ESC in it could
// clear the screen or recolour what follows; a newline or carriage return could print a line
// that looks like the CLI's own; a right-to-left override (U+202E) could make text read other
// than it is. So the text output shows such characters escaped, the way Go writes them in a
// string literal (\x1b, \n, \u202e), and -o json and -o yaml write them as the formats'
// own escapes, which decode to the same strings.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"slipway.dev/slipway"
)

// unsafeRune reports whether a terminal could act on r rather than show it: the C0 and C1
// control characters and DEL (unicode.Cc), the line and paragraph separators, and the
// invisible format characters (unicode.Cf: bidirectional overrides and isolates, zero-width
// spaces, the byte order mark, tag characters). The zero-width non-joiner and joiner are
// Cf too but kept: scripts such as Persian and Devanagari and emoji sequences need them.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f:
		return true
	case r < 0x80:
		return false
	case r == '\u200c' || r == '\u200d':
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}

// escape returns s with every unsafe rune escaped as in a Go string literal (\n, \r, \t,
// \x1b, \u0085, \u202e, \U000e0041) and every byte that is not UTF-8 as \xff. Everything
// else, the backslash included, is kept: text without such characters comes out as it is,
// and escaping escaped text changes nothing.
func escape[S ~string](s S) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return string(appendEscaped(make([]byte, 0, len(s)+8), string(s), false))
		}
	}
	return string(s)
}

// appendEscaped appends s to dst, escaped as escape does; keepTab keeps tabs as they are.
func appendEscaped(dst []byte, s string, keepTab bool) []byte {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			dst = fmt.Appendf(dst, `\x%02x`, s[i])
		case !unsafeRune(r), r == '\t' && keepTab:
			dst = append(dst, s[i:i+n]...)
		case r == '\n':
			dst = append(dst, `\n`...)
		case r == '\r':
			dst = append(dst, `\r`...)
		case r == '\t':
			dst = append(dst, `\t`...)
		case r < 0x80:
			dst = fmt.Appendf(dst, `\x%02x`, r)
		case r <= 0xffff:
			dst = fmt.Appendf(dst, `\u%04x`, r)
		default:
			dst = fmt.Appendf(dst, `\U%08x`, r)
		}
		i += n
	}
	return dst
}

// errorText is err's message for stderr, escaped. The details of a *slipway.Error stay one
// indented line each (main prints them so); a newline inside a message or a detail is
// escaped like any other.
func errorText(err error) string {
	s := err.Error()
	var e *slipway.Error
	if !errors.As(err, &e) || len(e.Details) == 0 {
		return escape(s)
	}
	head, ok := strings.CutSuffix(s, strings.TrimPrefix(e.Error(), e.Message))
	if !ok {
		// Something was wrapped around the details: keep it all on one line.
		return escape(s)
	}
	var b strings.Builder
	b.WriteString(escape(head))
	for _, d := range e.Details {
		b.WriteString("\n  " + escape(d))
	}
	return b.String()
}

// logWriter escapes instance log lines on their way to w: the newline that ends each line
// is kept, and so are tabs (stack traces indent with them, and a tab cannot move the cursor
// back or down); every other unsafe rune is escaped. A line is written once it is complete,
// so that a rune or an escape sequence split between two writes is judged whole.
type logWriter struct {
	w       io.Writer
	partial []byte
}

// Write writes the complete lines of what it was given so far and keeps the rest.
func (l *logWriter) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	end := bytes.LastIndexByte(l.partial, '\n')
	if end < 0 {
		return len(p), nil
	}
	var out []byte
	for line := range bytes.Lines(l.partial[:end+1]) {
		out = appendEscaped(out, string(line[:len(line)-1]), true)
		out = append(out, '\n')
	}
	l.partial = append(l.partial[:0], l.partial[end+1:]...)
	if _, err := l.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a last line that has no newline.
func (l *logWriter) Flush() error {
	if len(l.partial) == 0 {
		return nil
	}
	out := appendEscaped(nil, string(l.partial), true)
	l.partial = l.partial[:0]
	_, err := l.w.Write(out)
	return err
}

// escapeEncoded rewrites the unsafe runes from DEL up that JSON and YAML encoders leave as
// they are (DEL, C1 controls, U+202E...) as \u escapes, which both formats decode to the
// same rune. Those runes occur only inside quoted strings of b: JSON allows them nowhere
// else, and writeYAML double-quotes every YAML scalar that holds one. The C0 controls are
// the encoders' to escape (and the newlines between lines are b's own). Astral runes
// become a UTF-16 surrogate pair in JSON and \U in YAML.
func escapeEncoded(b []byte, forYAML bool) []byte {
	if !needsEncodedEscape(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case r < 0x7f || !unsafeRune(r) || (r == utf8.RuneError && n == 1):
			out = append(out, b[i:i+n]...)
		case r <= 0xffff:
			out = fmt.Appendf(out, `\u%04x`, r)
		case forYAML:
			out = fmt.Appendf(out, `\U%08x`, r)
		default:
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		}
		i += n
	}
	return out
}

// needsEncodedEscape reports whether s holds a rune escapeEncoded rewrites: an unsafe rune
// from DEL up.
func needsEncodedEscape[S ~string | ~[]byte](s S) bool {
	for _, r := range string(s) {
		if r >= 0x7f && unsafeRune(r) {
			return true
		}
	}
	return false
}
