package web

import (
	"fmt"
	"strconv"
	"strings"

	"slipway.dev/slipway"
)

// step is one step of a path: a field of an object, or an index into an array.
type step struct {
	field   string
	index   int
	isIndex bool
}

func (s step) String() string {
	if s.isIndex {
		return "[" + strconv.Itoa(s.index) + "]"
	}
	return "['" + s.field + "']"
}

// parsePath parses the subset of JSONPath the web provider takes:
//
//	$            the whole document (also written as an empty path)
//	.field       a field of an object: letters, digits, '_' and '-'
//	['field']    a field by any name, in single or double quotes
//	[index]      an element of an array; a negative index counts from the end
//
// A path may start without "$" (".data.value" or "data.value") and may be wrapped in braces
// ("{$.data.value}"). Filters, wildcards and slices are not supported.
func parsePath(path string) ([]step, error) {
	p := strings.TrimSpace(path)
	if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
		p = strings.TrimSpace(p[1 : len(p)-1])
	}
	p = strings.TrimPrefix(p, "$")
	if p != "" && p[0] != '.' && p[0] != '[' {
		p = "." + p
	}
	var steps []step
	for p != "" {
		switch p[0] {
		case '.':
			n := 1
			for n < len(p) && isFieldChar(p[n]) {
				n++
			}
			if n == 1 {
				return nil, pathErr(path, "a field name must follow '.'")
			}
			steps = append(steps, step{field: p[1:n]})
			p = p[n:]
		case '[':
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return nil, pathErr(path, "'[' is not closed")
			}
			inner := strings.TrimSpace(p[1:end])
			if len(inner) >= 2 && (inner[0] == '\'' || inner[0] == '"') {
				if inner[len(inner)-1] != inner[0] {
					return nil, pathErr(path, "a quoted field name is not closed")
				}
				steps = append(steps, step{field: inner[1 : len(inner)-1]})
			} else {
				i, err := strconv.Atoi(inner)
				if err != nil {
					return nil, pathErr(path, fmt.Sprintf("[%s] is neither an index nor a quoted field name", inner))
				}
				steps = append(steps, step{index: i, isIndex: true})
			}
			p = p[end+1:]
		default:
			return nil, pathErr(path, fmt.Sprintf("unexpected %q; use .field, ['field'] or [index]", p[0]))
		}
	}
	return steps, nil
}

func isFieldChar(c byte) bool {
	return c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func pathErr(path, why string) error {
	return slipway.Errorf(slipway.EINVALID, "jsonPath %q: %s", path, why)
}

// lookup follows steps into doc; ok is false when a step matches nothing.
func lookup(doc any, steps []step) (v any, ok bool, at string) {
	v = doc
	at = "$"
	for _, s := range steps {
		at += s.String()
		if s.isIndex {
			arr, isArr := v.([]any)
			if !isArr {
				return nil, false, at
			}
			i := s.index
			if i < 0 {
				i += len(arr)
			}
			if i < 0 || i >= len(arr) {
				return nil, false, at
			}
			v = arr[i]
			continue
		}
		obj, isObj := v.(map[string]any)
		if !isObj {
			return nil, false, at
		}
		if v, ok = obj[s.field]; !ok {
			return nil, false, at
		}
	}
	return v, true, at
}
