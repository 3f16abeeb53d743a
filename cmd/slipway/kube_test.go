package main

import (
	"strings"
	"testing"
)

// The binary on a real cluster is tested end to end in package e2e (kubernetes_test.go).

// TestServerConfig_KubernetesRunsEnvironmentsOnly: the server's own environment cannot be
// on kubernetes (there is no cluster to name), and the --platform help does not offer it.
func TestServerConfig_KubernetesRunsEnvironmentsOnly(t *testing.T) {
	err := serverConfig{platform: "kubernetes"}.validate()
	if err == nil || !strings.Contains(err.Error(), "Environment with target kubernetes") {
		t.Errorf("--platform kubernetes: %v, want a refusal that points to Environments", err)
	}
	if strings.Contains(platformNames(), "kubernetes") {
		t.Errorf("platformNames() = %q offers kubernetes", platformNames())
	}
	if !strings.Contains(strings.Join(environmentTargets(), ","), "kubernetes") {
		t.Errorf("environmentTargets() = %v, want kubernetes among them", environmentTargets())
	}
}
