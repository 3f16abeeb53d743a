// Package e2e holds slipway's end-to-end tests: they build the slipway binary, run
// `slipway server --platform local` with the demo service as the app, put steady load on the
// app's listener, drive rollouts through the CLI, and count every failed request.
//
// Start reading at harness_test.go.
package e2e
