package spec

import (
	"reflect"

	"gopkg.in/yaml.v3"

	"slipway.dev/slipway"
)

// A flag in a FlagSet (or a plain flagd file) may carry `ramp`, a slipway extension beside
// flagd's fields (slipway.FlagRamp). It is taken out of the flag before package flags reads
// the rest, which therefore stays flagd's format, and checked here with its positions.

// takeRamps removes the ramp of every flag of the flag set body n and decodes it, recording
// type errors and field positions in dec under path. It returns the ramps by flag key.
func takeRamps(dec *decoder, n *yaml.Node, path string) map[string]*slipway.FlagRamp {
	root := n
	for root != nil && root.Kind == yaml.AliasNode {
		root = root.Alias
	}
	if root == nil || root.Kind != yaml.MappingNode {
		return nil
	}
	out := map[string]*slipway.FlagRamp{}
	take := func(key string, flag *yaml.Node) {
		for flag != nil && flag.Kind == yaml.AliasNode {
			flag = flag.Alias
		}
		if flag == nil || flag.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(flag.Content); i += 2 {
			if flag.Content[i].Value != "ramp" {
				continue
			}
			var r slipway.FlagRamp
			dec.decode(flag.Content[i+1], reflect.ValueOf(&r).Elem(), join(path, "flags."+key+".ramp"), "")
			out[key] = &r
			flag.Content = append(flag.Content[:i:i], flag.Content[i+2:]...)
			return
		}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "flags" {
			continue
		}
		fl := root.Content[i+1]
		switch fl.Kind {
		case yaml.MappingNode:
			for j := 0; j+1 < len(fl.Content); j += 2 {
				take(fl.Content[j].Value, fl.Content[j+1])
			}
		case yaml.SequenceNode:
			for _, el := range fl.Content {
				if k := mapValue(el, "key"); k != nil {
					take(k.Value, el)
				}
			}
		default:
		}
	}
	return out
}

// mapValue returns the value of key in mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
