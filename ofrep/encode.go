package ofrep

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"slipway.dev/slipway"
)

// This file encodes OFREP response bodies by appending to a reused buffer. Object keys are
// written in sorted order, so equal values always encode to equal bytes (a strong ETag
// promises byte-identical bodies), and the same encoding canonicalises request contexts for
// the ETag hash.

// keysPool holds scratch slices for sorting object keys.
var keysPool = sync.Pool{New: func() any { s := make([]string, 0, 16); return &s }}

// appendEvaluation appends e, evaluated on st's Set, as an OFREP evaluationSuccess or
// evaluationFailure object.
func appendEvaluation(b []byte, e *slipway.Evaluation, st *state) []byte {
	b = append(b, `{"key":`...)
	b = appendString(b, e.Key)
	if e.ErrorCode != "" {
		b = append(b, `,"errorCode":"`...)
		b = append(b, e.ErrorCode...)
		b = append(b, '"')
		if e.ErrorDetails != "" {
			b = append(b, `,"errorDetails":`...)
			b = appendString(b, e.ErrorDetails)
		}
	} else {
		if e.HasValue {
			b = append(b, `,"value":`...)
			b = appendValue(b, e.Value)
			b = append(b, `,"variant":`...)
			b = appendString(b, e.Variant)
		}
		b = append(b, `,"reason":"`...)
		b = append(b, e.Reason...)
		b = append(b, '"')
	}
	if len(e.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		b = st.appendMetadata(b, e.Metadata)
	}
	return append(b, '}')
}

// appendError appends an OFREP error body; key is omitted when empty.
func appendError(b []byte, key string, code slipway.FlagErrorCode, details string) []byte {
	b = append(b, '{')
	if key != "" {
		b = append(b, `"key":`...)
		b = appendString(b, key)
		b = append(b, ',')
	}
	if code != "" {
		b = append(b, `"errorCode":"`...)
		b = append(b, code...)
		b = append(b, `",`...)
	}
	b = append(b, `"errorDetails":`...)
	b = appendString(b, details)
	return append(b, '}')
}

// appendValue appends v as canonical JSON: objects with sorted keys, numbers as
// encoding/json writes float64s.
func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		if x {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case string:
		return appendString(b, x)
	case float64:
		return appendFloat(b, x)
	case map[string]any:
		return appendObject(b, x)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, e)
		}
		return append(b, ']')
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case json.Number:
		return append(b, x...)
	}
	// Other Go types only reach here from programmatic flag sets; encoding/json knows them.
	raw, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	var back any
	if json.Unmarshal(raw, &back) != nil {
		return append(b, raw...)
	}
	return appendValue(b, back)
}

// appendObject appends m with its keys in sorted order.
func appendObject(b []byte, m map[string]any) []byte {
	if len(m) == 0 {
		return append(b, "{}"...)
	}
	kp := keysPool.Get().(*[]string)
	keys := (*kp)[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendValue(b, m[k])
	}
	clear(keys)
	*kp = keys[:0]
	keysPool.Put(kp)
	return append(b, '}')
}

// appendFloat writes f as encoding/json does (non-finite numbers, which JSON cannot hold,
// as null).
func appendFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(b, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD; U+2028 and U+2029
// are escaped so the body is also valid JavaScript.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
