package httpapi_test

import (
	"context"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"
)

func TestEnvironments(t *testing.T) {
	served := []slipway.Environment{{Name: "default", Target: slipway.Target{Kind: slipway.TargetLocal}}}
	srv := apitest.NewServer(t, httpapi.Config{Environments: func(context.Context) ([]slipway.Environment, error) { return served, nil }})
	c := apitest.NewClient(srv.URL)
	c.SetToken(apitest.ViewerSecret)
	got, err := c.Environments(t.Context())
	if err != nil || len(got) != 1 || got[0].Name != "default" || got[0].Target.Kind != slipway.TargetLocal {
		t.Errorf("Environments = %+v, %v", got, err)
	}
	// A server that says nothing of its environments serves the default one.
	bare := apitest.NewClient(apitest.NewServer(t, httpapi.Config{}).URL)
	if got, err := bare.Environments(t.Context()); err != nil || len(got) != 1 || got[0].Name != slipway.DefaultEnvironment {
		t.Errorf("Environments without a list = %+v, %v", got, err)
	}
	// An error is the API's error, not an empty list.
	failing := apitest.NewClient(apitest.NewServer(t, httpapi.Config{Environments: func(context.Context) ([]slipway.Environment, error) {
		return nil, slipway.Errorf(slipway.EUNAVAILABLE, "the disk is full")
	}}).URL)
	if _, err := failing.Environments(t.Context()); slipway.ErrorCode(err) != slipway.EUNAVAILABLE {
		t.Errorf("Environments when listing fails: %v, want unavailable", err)
	}
	// A token is needed.
	anon := apitest.NewClient(srv.URL)
	anon.SetToken("")
	if _, err := anon.Environments(t.Context()); slipway.ErrorCode(err) != slipway.EUNAUTHORIZED {
		t.Errorf("Environments without a token: %v, want unauthorized", err)
	}
}
