// Command ramp-hook is an app that reports, per flag variant, how its requests went, so that
// a guarded ramp in slipway can judge a variant with no metrics backend.
//
// An OpenFeature hook (OutcomeHook) remembers, in each request's context, the variant every
// flag served; when the request ends, the app says whether it failed (Reporter.Done) and the
// reporter POSTs one outcome per flag variant to slipway:
//
//	POST /api/v1/flags/{key}/outcomes  {"variant": "on", "outcome": "error", "count": 1}
//
// It serves GET /checkout?user=NAME, which checks out with the new payment path when flag
// new-payment (examples/ramp/ramp.yaml) serves NAME variant "on", and the new payment path
// fails one time in three: a guarded ramp of new-payment is rolled back by its analysis.
//
// Run it beside `slipway server` with SLIPWAY_URL pointing at the server (default
// http://127.0.0.1:7070), SLIPWAY_TOKEN holding a deployer token to report outcomes with
// (`slipway token create checkout-app --role deployer`), and LISTEN at the address to serve
// on (default 127.0.0.1:8081).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"
)

// Outcome names slipway's builtin outcome metrics count.
const (
	outcomeError   = "error"
	outcomeSuccess = "success"
)

// exposure is one flag variant a request was served.
type exposure struct{ flag, variant string }

// exposures collects the variants served during one request.
type exposures struct {
	mu   sync.Mutex
	list []exposure
}

// add records that flag served variant.
func (e *exposures) add(flag, variant string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, exposure{flag, variant})
}

type exposuresKey struct{}

// withExposures returns a request context in which OutcomeHook records served variants.
func withExposures(ctx context.Context) context.Context {
	return context.WithValue(ctx, exposuresKey{}, &exposures{})
}

// OutcomeHook is an OpenFeature hook: After records the variant each evaluation served in
// the request's exposures; Error records nothing, since no variant was served.
type OutcomeHook struct {
	openfeature.UnimplementedHook
}

// After records the served variant.
func (OutcomeHook) After(ctx context.Context, hc openfeature.HookContext, d openfeature.InterfaceEvaluationDetails, _ openfeature.HookHints) error {
	if e, ok := ctx.Value(exposuresKey{}).(*exposures); ok && d.Variant != "" {
		e.add(hc.FlagKey(), d.Variant)
	}
	return nil
}

// Reporter posts outcomes to slipway's API.
type Reporter struct {
	Base   string // the slipway server, like http://127.0.0.1:7070
	Token  string // a deployer API token (slipway token create ... --role deployer)
	Client *http.Client
}

// Done reports the request's outcome (error when err is not nil, success otherwise) for
// every flag variant it was served.
func (r *Reporter) Done(ctx context.Context, err error) error {
	e, ok := ctx.Value(exposuresKey{}).(*exposures)
	if !ok {
		return nil
	}
	outcome := outcomeSuccess
	if err != nil {
		outcome = outcomeError
	}
	e.mu.Lock()
	list := append([]exposure(nil), e.list...)
	e.mu.Unlock()
	var errs []error
	for _, x := range list {
		errs = append(errs, r.Report(ctx, x.flag, x.variant, outcome, 1))
	}
	return errors.Join(errs...)
}

// Report posts count outcomes of flag's variant.
func (r *Reporter) Report(ctx context.Context, flag, variant, outcome string, count int64) error {
	body, err := json.Marshal(map[string]any{"variant": variant, "outcome": outcome, "count": count})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Base+"/api/v1/flags/"+url.PathEscape(flag)+"/outcomes", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.Token)
	resp, err := r.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("report outcome of %s/%s: %s", flag, variant, resp.Status)
	}
	return nil
}

func main() {
	base := os.Getenv("SLIPWAY_URL")
	if base == "" {
		base = "http://127.0.0.1:7070"
	}
	if err := openfeature.SetProviderAndWait(ofrep.NewProvider(base)); err != nil {
		log.Fatal(err)
	}
	flags := openfeature.NewClient("shop")
	flags.AddHooks(OutcomeHook{})
	rep := &Reporter{Base: base, Token: os.Getenv("SLIPWAY_TOKEN"), Client: &http.Client{Timeout: 5 * time.Second}}

	http.HandleFunc("GET /checkout", func(w http.ResponseWriter, req *http.Request) {
		ctx := withExposures(req.Context())
		user := req.URL.Query().Get("user")
		on, _ := flags.BooleanValue(ctx, "new-payment", false, openfeature.NewEvaluationContext(user, nil))
		var err error
		if on && rand.IntN(3) == 0 {
			err = errors.New("new payment failed")
		}
		if rerr := rep.Done(ctx, err); rerr != nil {
			log.Printf("report outcome: %v", rerr)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "checked out (new payment: %v)\n", on)
	})
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = "127.0.0.1:8081"
	}
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
