// Package e2e holds slipway's end-to-end tests: they build the slipway binary, run
// `slipway server --platform local` with the demo service as the app, put steady load on the
// app's listener, drive rollouts through the CLI, and count every failed request.
//
// The kubernetes tests run on a real control plane (package kubetest): one installs slipway
// with deploy/kubernetes and checks that its ServiceAccount may do what slipway does there
// and nothing else (kubernetes_install_test.go); the others run the binary's server beside
// the cluster as that ServiceAccount, bound in a namespace of each test's own, and check
// what it writes there through every strategy, an abort, drift, a prune, custom resources
// applied with kubectl and a SIGKILL (kubernetes_test.go, on kubernetes_harness_test.go).
//
// Start reading at harness_test.go.
package e2e
