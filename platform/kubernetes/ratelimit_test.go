package kubernetes

import (
	"testing"

	"k8s.io/client-go/rest"
)

// TestNew_ClientRateLimit: a client configuration that says nothing of its rate (as a
// kubeconfig gives it) makes clients that do not hold requests back, client-go's default
// of 5 a second being far too few for many apps; one that sets QPS keeps it; the caller's
// configuration is not changed.
func TestNew_ClientRateLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		qps     float32
		wantQPS float32 // 0: no client-side limiter
	}{
		{"unset: no client-side limit", 0, 0},
		{"set: kept", 7, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &rest.Config{Host: "https://127.0.0.1:1", QPS: tc.qps, Burst: 9}
			p, err := New(Config{RESTConfig: cfg, Namespace: "shop"})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.QPS != tc.qps {
				t.Errorf("New changed the caller's QPS to %v", cfg.QPS)
			}
			for name, c := range map[string]rest.Interface{
				"apps":    p.kube.AppsV1().RESTClient(),
				"core":    p.kube.CoreV1().RESTClient(),
				"gateway": p.gw.GatewayV1().RESTClient(),
			} {
				l := c.GetRateLimiter()
				switch {
				case tc.wantQPS == 0 && l != nil:
					t.Errorf("%s client: a client-side limiter of %v requests a second, want none", name, l.QPS())
				case tc.wantQPS != 0 && (l == nil || l.QPS() != tc.wantQPS):
					t.Errorf("%s client: limiter %v, want %v requests a second", name, l, tc.wantQPS)
				}
			}
		})
	}
}
