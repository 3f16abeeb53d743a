// Package e2e holds slipway's end-to-end tests: they build the slipway binary, run
// `slipway server --platform local` with the demo service as the app, put steady load on the
// app's listener, drive rollouts through the CLI, and count every failed request. One more
// installs slipway in a real Kubernetes API server with deploy/kubernetes and checks that
// its ServiceAccount may do what slipway does there and nothing else
// (kubernetes_install_test.go).
//
// Start reading at harness_test.go.
package e2e
