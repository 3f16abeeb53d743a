package slipway

import (
	"encoding/json"
	"reflect"
	"sort"
)

// ChangedFields lists the field paths, two levels deep ("run.args", "replicas"), in which
// the JSON forms of two documents differ: what a plan reports as PlanChange.Fields. None
// means they are the same document.
func ChangedFields(a, b any) []string {
	var out []string
	var walk func(x, y any, path string, depth int)
	walk = func(x, y any, path string, depth int) {
		if reflect.DeepEqual(x, y) {
			return
		}
		mx, okx := x.(map[string]any)
		my, oky := y.(map[string]any)
		if !okx || !oky || depth == 2 {
			out = append(out, path)
			return
		}
		keys := make([]string, 0, len(mx)+len(my))
		for k := range mx {
			keys = append(keys, k)
		}
		for k := range my {
			if _, ok := mx[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			walk(mx[k], my[k], p, depth+1)
		}
	}
	walk(jsonOf(a), jsonOf(b), "", 0)
	return out
}

// jsonOf is v as decoded JSON (maps, slices, strings, float64s), nil when it has none.
func jsonOf(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil
	}
	return out
}
