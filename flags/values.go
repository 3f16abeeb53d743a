package flags

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
)

// This file holds JSON Logic's value semantics as github.com/diegoholiveira/jsonlogic/v3
// (the library flagd evaluates with) defines them: truthiness, loose and strict equality,
// ordering and the two number/string conversions it uses. Values are JSON values as
// encoding/json decodes them (nil, bool, float64, string, []any, map[string]any); other Go
// numeric types in a caller's context are treated as numbers.

// evalError aborts an evaluation; Evaluate turns it into a PARSE_ERROR, as flagd does when
// its JSON Logic library fails.
type evalError struct{ msg string }

func (e evalError) Error() string { return e.msg }

// fail aborts the current evaluation with msg.
func fail(msg string) { panic(evalError{msg}) }

// number reports v as a float64 when it is a number of any Go numeric type.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case float32:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case int16:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint8:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// truthy is JSON Logic's truthiness: false, 0, "", [], {} and null are false. NaN is true,
// as in the library flagd uses.
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return x != ""
	case float64:
		return x != 0
	case nil:
		return false
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	if f, ok := number(v); ok {
		return f != 0
	}
	return false
}

// jsNumber is JavaScript's ToNumber as used by comparisons: null is 0, booleans are 0/1,
// blank strings are 0, unparsable strings, arrays and objects are NaN.
func jsNumber(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case nil:
		return 0
	case bool:
		if x {
			return 1
		}
		return 0
	case string:
		if strings.TrimSpace(x) == "" {
			return 0
		}
		f, err := strconv.ParseFloat(x, 64)
		if err != nil && !isRangeErr(err) {
			return math.NaN()
		}
		return f
	}
	if f, ok := number(v); ok {
		return f
	}
	return math.NaN()
}

func isRangeErr(err error) bool {
	return errors.Is(err, strconv.ErrRange)
}

// toNumber is the arithmetic conversion: numbers as they are, strings parsed (0 when
// unparsable); any other value fails the evaluation.
func toNumber(v any) float64 {
	if s, ok := v.(string); ok {
		f, _ := strconv.ParseFloat(s, 64)
		return f
	}
	if f, ok := number(v); ok {
		return f
	}
	fail("not a number: " + describe(v))
	return 0
}

// toString is the string conversion of cat and substr: numbers in shortest decimal form,
// null as "", strings as they are; any other value fails the evaluation.
func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	if f, ok := number(v); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	fail("not a string: " + describe(v))
	return ""
}

// looseEqual is ==: null equals only null, two strings compare as strings, anything else
// compares as numbers.
func looseEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if sa, ok := a.(string); ok {
		if sb, ok := b.(string); ok {
			return sa == sb
		}
	}
	return jsNumber(a) == jsNumber(b)
}

// kind groups values by JSON type for ===.
func kind(v any) int {
	switch v.(type) {
	case nil:
		return 0
	case bool:
		return 1
	case string:
		return 2
	case []any:
		return 4
	case map[string]any:
		return 5
	}
	if _, ok := number(v); ok {
		return 3
	}
	return 6
}

// strictEqual is ===: values of different JSON types are never equal.
func strictEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if kind(a) != kind(b) {
		return false
	}
	return looseEqual(a, b)
}

// less is JavaScript's <: two strings compare by code points, anything else as numbers.
func less(a, b any) bool {
	if sa, ok := a.(string); ok {
		if sb, ok := b.(string); ok {
			return sa < sb
		}
	}
	return jsNumber(a) < jsNumber(b)
}

// describe names a value's JSON type for error messages.
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	if _, ok := number(v); ok {
		return "number"
	}
	return "unsupported value"
}

// variantName turns a targeting result into a variant name the way flagd does: the JSON
// encoding with quotes removed, so true selects "true" and 1 selects "1".
func variantName(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		if x {
			return "true"
		}
		return "false"
	case float64:
		b, err := json.Marshal(x)
		if err != nil {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		return string(b)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return describe(v)
	}
	return strings.ReplaceAll(string(b), `"`, "")
}
