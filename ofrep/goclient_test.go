package ofrep_test

import (
	"net/http/httptest"
	"reflect"
	"testing"

	ofrepprovider "github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"

	"slipway.dev/slipway/ofrep"
)

// TestGoProvider evaluates flags through the OpenFeature Go SDK and its OFREP provider
// (single-flag endpoint) against a real HTTP server.
func TestGoProvider(t *testing.T) {
	srv, _ := newServer(t, ofrep.Config{APIKeys: []string{"secret"}})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)

	const domain = "slipway-ofrep-test"
	provider := ofrepprovider.NewProvider(hs.URL, ofrepprovider.WithBearerToken("secret"))
	if err := openfeature.SetNamedProviderAndWait(domain, provider); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(openfeature.Shutdown)
	client := openfeature.NewClient(domain)
	ctx := t.Context()
	user := openfeature.NewEvaluationContext("user-1", map[string]any{"email": "ann@example.com", "plan": "pro"})

	t.Run("boolean, targeting match, merged metadata", func(t *testing.T) {
		d, err := client.BooleanValueDetails(ctx, "banner", false, user)
		if err != nil || !d.Value || d.Reason != openfeature.TargetingMatchReason || d.Variant != "on" {
			t.Fatalf("%+v, %v", d, err)
		}
		want := openfeature.FlagMetadata{"experiment": true, "flagSetId": "shop", "team": "growth", "version": 3.0}
		if !reflect.DeepEqual(d.FlagMetadata, want) {
			t.Errorf("metadata %v", d.FlagMetadata)
		}
		other := openfeature.NewEvaluationContext("user-2", map[string]any{"email": "bob@other.org"})
		if v, err := client.BooleanValue(ctx, "banner", true, other); err != nil || v {
			t.Errorf("other user: %v, %v", v, err)
		}
	})
	t.Run("string, fractional", func(t *testing.T) {
		rachel := openfeature.NewEvaluationContext("x", map[string]any{"email": "rachel@faas.com"})
		d, err := client.StringValueDetails(ctx, "headerColor", "none", rachel)
		if err != nil || d.Value != "blue" || d.Variant != "blue" || d.Reason != openfeature.TargetingMatchReason {
			t.Errorf("%+v, %v", d, err)
		}
		if v, _ := client.StringValue(ctx, "greeting", "", user); v != `Hello, "world" <&>` {
			t.Errorf("greeting %q", v)
		}
	})
	t.Run("int", func(t *testing.T) {
		d, err := client.IntValueDetails(ctx, "limit", 0, user)
		if err != nil || d.Value != 100 || d.Reason != openfeature.StaticReason || d.Variant != "high" {
			t.Errorf("%+v, %v", d, err)
		}
	})
	t.Run("float", func(t *testing.T) {
		d, err := client.FloatValueDetails(ctx, "ratio", 0, user)
		if err != nil || d.Value != 0.5 || d.Reason != openfeature.StaticReason {
			t.Errorf("%+v, %v", d, err)
		}
	})
	t.Run("object", func(t *testing.T) {
		d, err := client.ObjectValueDetails(ctx, "theme", nil, user)
		want := map[string]any{"bg": "#000", "fg": "#fff", "contrast": 21.0}
		if err != nil || !reflect.DeepEqual(d.Value, want) || d.Variant != "dark" {
			t.Errorf("%+v, %v", d, err)
		}
	})
	t.Run("targeting without a default variant gives the code default", func(t *testing.T) {
		if v, err := client.StringValue(ctx, "pro-only", "code-default", user); err != nil || v != "pro" {
			t.Errorf("pro: %q, %v", v, err)
		}
		free := openfeature.NewEvaluationContext("user-3", map[string]any{"plan": "free"})
		if v, _ := client.StringValue(ctx, "pro-only", "code-default", free); v != "code-default" {
			t.Errorf("free: %q", v)
		}
	})
	t.Run("disabled flag gives the default with reason DISABLED", func(t *testing.T) {
		d, err := client.BooleanValueDetails(ctx, "retired", false, user)
		if err != nil || d.Value || d.Reason != openfeature.DisabledReason {
			t.Errorf("%+v, %v", d, err)
		}
	})
	t.Run("unknown flag is FLAG_NOT_FOUND", func(t *testing.T) {
		d, err := client.BooleanValueDetails(ctx, "no-such-flag", true, user)
		if err == nil || !d.Value || d.ErrorCode != openfeature.FlagNotFoundCode || d.Reason != openfeature.ErrorReason {
			t.Errorf("%+v, %v", d, err)
		}
	})
	t.Run("targeting error is GENERAL", func(t *testing.T) {
		d, err := client.BooleanValueDetails(ctx, "broken", true, user)
		if err == nil || d.ErrorCode != openfeature.GeneralCode || !d.Value {
			t.Errorf("%+v, %v", d, err)
		}
	})
	t.Run("type mismatch is detected by the client", func(t *testing.T) {
		d, err := client.BooleanValueDetails(ctx, "limit", true, user)
		if err == nil || d.ErrorCode != openfeature.TypeMismatchCode {
			t.Errorf("%+v, %v", d, err)
		}
	})
	t.Run("wrong credentials", func(t *testing.T) {
		const other = "slipway-ofrep-test-badkey"
		if err := openfeature.SetNamedProviderAndWait(other, ofrepprovider.NewProvider(hs.URL, ofrepprovider.WithApiKeyAuth("wrong"))); err != nil {
			t.Fatal(err)
		}
		d, err := openfeature.NewClient(other).BooleanValueDetails(ctx, "banner", false, user)
		if err == nil || d.ErrorCode != openfeature.GeneralCode || d.Value {
			t.Errorf("%+v, %v", d, err)
		}
		if err := openfeature.SetNamedProviderAndWait(other, ofrepprovider.NewProvider(hs.URL, ofrepprovider.WithApiKeyAuth("secret"))); err != nil {
			t.Fatal(err)
		}
		if v, err := openfeature.NewClient(other).BooleanValue(ctx, "banner", false, user); err != nil || !v {
			t.Errorf("X-API-Key: %v, %v", v, err)
		}
	})
}
