package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/client-go/dynamic"

	"slipway.dev/slipway"
	"slipway.dev/slipway/fleet"
	"slipway.dev/slipway/kubesource"
	"slipway.dev/slipway/platform/kubernetes"
)

// Environment variables of the server's custom-resource flags.
const (
	envKubeNamespaces = "SLIPWAY_KUBE_NAMESPACES"
	envKubeconfig     = "SLIPWAY_KUBECONFIG"
)

// kubeFlags say where the server watches slipway's custom resources (package kubesource).
type kubeFlags struct {
	// namespaces are watched for App, AnalysisTemplate, FlagSet and Environment resources;
	// none: the server watches nothing.
	namespaces []string
	// kubeconfig and context reach the cluster (kubernetes.RESTConfig: empty, the usual
	// kubeconfig or, in a cluster, the pod's service account).
	kubeconfig, context string
	// environments maps a namespace to the environment of its apps ("ns=env").
	environments []string
}

func (k *kubeFlags) register(f *pflag.FlagSet) {
	f.StringSliceVar(&k.namespaces, "kube-namespaces", splitList(os.Getenv(envKubeNamespaces)), "Kubernetes namespaces whose slipway custom resources (apps.slipway.dev, ...) the server applies, writing each App's status ($"+envKubeNamespaces+"; docs/kubernetes.md)")
	f.StringVar(&k.kubeconfig, "kubeconfig", os.Getenv(envKubeconfig), "the kubeconfig of the cluster whose custom resources are watched; empty: $KUBECONFIG, ~/.kube/config, or in a cluster its service account ($"+envKubeconfig+")")
	f.StringVar(&k.context, "kube-context", "", "the kubeconfig context of --kube-namespaces' cluster (its current context when empty)")
	f.StringSliceVar(&k.environments, "kube-environment", nil, "NAMESPACE=ENV: the environment of a watched namespace's apps when a resource has no slipway.dev/environment label (the default environment otherwise)")
}

// check returns the problems of the flags.
func (k *kubeFlags) check() []string {
	var errs []string
	for _, e := range k.environments {
		ns, env, ok := strings.Cut(e, "=")
		if !ok || ns == "" || env == "" {
			errs = append(errs, fmt.Sprintf("--kube-environment %q: use NAMESPACE=ENVIRONMENT, like shop=production", e))
		}
	}
	if len(k.environments) > 0 && len(k.namespaces) == 0 {
		errs = append(errs, "--kube-environment needs --kube-namespaces")
	}
	return errs
}

// kubeSource returns the run of the custom-resource source, or nil when no namespace is
// watched.
func kubeSource(k kubeFlags, fl *fleet.Fleet, store kubesource.Store, log *slog.Logger) (func(context.Context) error, error) {
	if len(k.namespaces) == 0 {
		return nil, nil
	}
	rc, err := kubernetes.RESTConfig(k.kubeconfig, k.context)
	if err != nil {
		return nil, err
	}
	rc.UserAgent = "slipway"
	client, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	envs := map[string]string{}
	for _, e := range k.environments {
		ns, env, _ := strings.Cut(e, "=")
		envs[ns] = env
	}
	src, err := kubesource.New(kubesource.Config{Client: client, Namespaces: k.namespaces, Environments: envs, Store: store,
		Log: log.With("component", "kubernetes"),
		Place: func(env string) (kubesource.Place, bool) {
			_, d, st, ok := fl.Place(env)
			if !ok {
				return kubesource.Place{}, false
			}
			sr, ok := d.(slipway.StatusReader)
			return kubesource.Place{Deployer: d, State: st, Status: sr}, ok
		}})
	if err != nil {
		return nil, err
	}
	return src.Run, nil
}
