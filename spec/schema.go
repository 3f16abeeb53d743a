package spec

import (
	"bytes"
	_ "embed"
)

//go:embed schema.json
var schema []byte

// Schema returns the JSON Schema (draft 2020-12) of one document of a slipway file, for
// editors and other tools. It covers field names, types and ranges; rules that span fields
// or documents (template references, CEL conditions) are checked by Load (package validate's
// rules) only.
func Schema() []byte { return bytes.Clone(schema) }
