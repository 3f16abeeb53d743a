package ofrep

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file decodes OFREP request bodies. It is a small strict JSON parser that produces the
// values encoding/json would (nil, bool, float64, string, []any, map[string]any) and reads the
// evaluation context into a map the caller supplies, so the request path allocates only the
// context's own values.

// maxDepth bounds nesting in a request body.
const maxDepth = 64

// syntaxError is a malformed request body; its message says where.
type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string {
	return e.msg + " at offset " + strconv.Itoa(e.off)
}

type decoder struct {
	data []byte
	i    int
	err  *syntaxError
}

// decodeRequest reads an OFREP request body ({"context": {...}}) into ctx. An empty body, a
// null body, a missing or null context give an empty context; members other than context
// are checked for syntax and ignored.
func decodeRequest(data []byte, ctx map[string]any) error {
	d := decoder{data: data}
	d.ws()
	if d.i == len(d.data) {
		return nil
	}
	switch d.data[d.i] {
	case 'n':
		d.literal("null")
	case '{':
		d.i++
		d.members(func(key string) {
			if key != "context" {
				d.value(1)
				return
			}
			d.ws()
			if d.i >= len(d.data) {
				d.fail("unexpected end of input")
				return
			}
			if d.data[d.i] == '{' {
				d.i++
				clear(ctx)
				d.members(func(k string) { ctx[k] = d.value(2) })
				return
			}
			if d.data[d.i] == 'n' {
				d.literal("null")
				clear(ctx)
				return
			}
			if d.err == nil {
				d.fail("context must be a JSON object")
			}
		})
	default:
		d.fail("the request body must be a JSON object")
	}
	if d.err == nil {
		d.ws()
		if d.i != len(d.data) {
			d.fail("unexpected data after the request object")
		}
	}
	if d.err != nil {
		return d.err
	}
	return nil
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = &syntaxError{msg: msg, off: d.i}
	}
	d.i = len(d.data)
}

func (d *decoder) ws() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) literal(lit string) {
	if len(d.data)-d.i >= len(lit) && string(d.data[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return
	}
	d.fail("invalid literal")
}

// members reads an object's members after its '{', calling member after each key and colon;
// member must consume the value.
func (d *decoder) members(member func(key string)) {
	d.ws()
	if d.i < len(d.data) && d.data[d.i] == '}' {
		d.i++
		return
	}
	for d.err == nil {
		d.ws()
		if d.i >= len(d.data) || d.data[d.i] != '"' {
			d.fail("expected a string key")
			return
		}
		key := d.str()
		d.ws()
		if d.i >= len(d.data) || d.data[d.i] != ':' {
			d.fail("expected ':' after an object key")
			return
		}
		d.i++
		member(key)
		d.ws()
		if d.i >= len(d.data) {
			d.fail("unterminated object")
			return
		}
		switch d.data[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return
		default:
			d.fail("expected ',' or '}' in an object")
			return
		}
	}
}

// value reads one JSON value at nesting depth depth.
func (d *decoder) value(depth int) any {
	if depth > maxDepth {
		d.fail("nested too deeply")
		return nil
	}
	d.ws()
	if d.i >= len(d.data) {
		d.fail("unexpected end of input")
		return nil
	}
	switch c := d.data[d.i]; {
	case c == '{':
		d.i++
		m := map[string]any{}
		d.members(func(k string) { m[k] = d.value(depth + 1) })
		return m
	case c == '[':
		d.i++
		a := []any{}
		d.ws()
		if d.i < len(d.data) && d.data[d.i] == ']' {
			d.i++
			return a
		}
		for d.err == nil {
			a = append(a, d.value(depth+1))
			d.ws()
			if d.i >= len(d.data) {
				d.fail("unterminated array")
				break
			}
			if d.data[d.i] == ',' {
				d.i++
				continue
			}
			if d.data[d.i] == ']' {
				d.i++
				break
			}
			d.fail("expected ',' or ']' in an array")
		}
		return a
	case c == '"':
		return d.str()
	case c == 't':
		d.literal("true")
		return true
	case c == 'f':
		d.literal("false")
		return false
	case c == 'n':
		d.literal("null")
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	}
	d.fail("invalid character")
	return nil
}

// number reads a JSON number (RFC 8259 grammar) as a float64.
func (d *decoder) number() any {
	start := d.i
	if d.data[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		n := 0
		for d.i < len(d.data) && d.data[d.i] >= '0' && d.data[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.i < len(d.data) && d.data[d.i] == '0' {
		d.i++
	} else if digits() == 0 {
		d.fail("invalid number")
		return nil
	}
	if d.i < len(d.data) && d.data[d.i] == '.' {
		d.i++
		if digits() == 0 {
			d.fail("invalid number")
			return nil
		}
	}
	if d.i < len(d.data) && (d.data[d.i] == 'e' || d.data[d.i] == 'E') {
		d.i++
		if d.i < len(d.data) && (d.data[d.i] == '+' || d.data[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			d.fail("invalid number")
			return nil
		}
	}
	f, err := strconv.ParseFloat(string(d.data[start:d.i]), 64)
	if err != nil {
		d.i = start
		d.fail("number out of range")
		return nil
	}
	return f
}

// str reads a JSON string starting at its opening quote. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does.
func (d *decoder) str() string {
	d.i++ // opening quote
	start := d.i
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			s := string(d.data[start:d.i])
			d.i++
			return s
		case c == '\\' || c >= utf8.RuneSelf:
			return d.slowStr(start)
		case c < 0x20:
			d.fail("control character in a string")
			return ""
		}
		d.i++
	}
	d.fail("unterminated string")
	return ""
}

func (d *decoder) slowStr(start int) string {
	b := make([]byte, d.i-start, d.i-start+16)
	copy(b, d.data[start:d.i])
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			d.i++
			return string(b)
		case c < 0x20:
			d.fail("control character in a string")
			return ""
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(d.data[d.i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, d.data[d.i:d.i+size]...)
			}
			d.i += size
		case c != '\\':
			b = append(b, c)
			d.i++
		default:
			d.i++
			if d.i >= len(d.data) {
				d.fail("unterminated string")
				return ""
			}
			e := d.data[d.i]
			d.i++
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := d.hex4()
				if r < 0 {
					return ""
				}
				if utf16.IsSurrogate(r) {
					if d.i+1 < len(d.data) && d.data[d.i] == '\\' && d.data[d.i+1] == 'u' {
						save := d.i
						d.i += 2
						r2 := d.hex4()
						if r2 < 0 {
							return ""
						}
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							r = dec
						} else {
							d.i = save
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
			default:
				d.i--
				d.fail("invalid escape in a string")
				return ""
			}
		}
	}
	d.fail("unterminated string")
	return ""
}

// hex4 reads four hex digits of a \u escape; -1 on error.
func (d *decoder) hex4() rune {
	if len(d.data)-d.i < 4 {
		d.fail("invalid \\u escape")
		return -1
	}
	var r rune
	for _, c := range d.data[d.i : d.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			d.fail("invalid \\u escape")
			return -1
		}
	}
	d.i += 4
	return r
}
