package slipway_test

import (
	"context"
	"strings"
	"testing"

	"slipway.dev/slipway"
)

func TestValidEnvironmentName(t *testing.T) {
	for _, ok := range []string{"default", "staging", "production-eu", "a", "p1", strings.Repeat("a", 63)} {
		if err := slipway.ValidEnvironmentName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Prod", "-x", "x-", "a_b", "a/b", "../x", "a\x00", "<script>", strings.Repeat("a", 64), "staging "} {
		if err := slipway.ValidEnvironmentName(bad); slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("%q: %v, want EINVALID", bad, err)
		}
	}
}

func TestEnvironmentFrom(t *testing.T) {
	if got := slipway.EnvironmentFrom(context.Background()); got != slipway.DefaultEnvironment {
		t.Errorf("no environment in ctx: %q, want %q", got, slipway.DefaultEnvironment)
	}
	if got := slipway.EnvironmentFrom(slipway.WithEnvironment(context.Background(), "staging")); got != "staging" {
		t.Errorf("got %q, want staging", got)
	}
}

func TestRunField(t *testing.T) {
	for kind, want := range map[string]string{"local": "run", "sim": "run", "kubernetes": "container", "nomad": ""} {
		if got := slipway.RunField(kind); got != want {
			t.Errorf("RunField(%q) = %q, want %q", kind, got, want)
		}
	}
}
