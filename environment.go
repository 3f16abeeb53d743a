package slipway

import (
	"context"
	"regexp"
)

// KindEnvironment is the kind of an Environment document.
const KindEnvironment = "Environment"

// DefaultEnvironment is the environment of an app that names none, on the server's own
// platform: a user who never names an environment works in it.
const DefaultEnvironment = "default"

// Target kinds: what runs an environment's apps.
const (
	// TargetLocal runs each instance as a process on the server's machine, behind slipway's
	// own proxy (an app's `run`).
	TargetLocal = "local"
	// TargetSim is the in-memory platform, for trying slipway out and for tests (an app's
	// `run`, never started).
	TargetSim = "sim"
	// TargetKubernetes runs an app as Kubernetes objects in a cluster's namespace (an app's
	// `container`).
	TargetKubernetes = "kubernetes"
)

// Environment is a named place where apps run ("staging", "production-eu") and the target
// that runs them. The same app name in two environments is two apps, with their own
// revisions, rollouts, flags and events.
type Environment struct {
	Name string `json:"name"`
	// Labels describe the environment (tier: production); gates and roles may use them.
	Labels map[string]string `json:"labels,omitempty"`
	Target Target            `json:"target"`
}

// Target is what runs an environment's apps.
type Target struct {
	// Kind is TargetLocal, TargetSim or TargetKubernetes.
	Kind string `json:"kind"`
	// Kubernetes locates the cluster and namespace of a TargetKubernetes.
	Kubernetes *KubernetesTarget `json:"kubernetes,omitempty"`
}

// KubernetesTarget is a namespace of a cluster, reached with a kubeconfig.
type KubernetesTarget struct {
	// Kubeconfig is the kubeconfig file ("" for the server's in-cluster or default one).
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Context is the kubeconfig context ("" for its current one).
	Context   string `json:"context,omitempty"`
	Namespace string `json:"namespace"`
}

// TargetKinds are the kinds of targets, in the order the docs list them.
func TargetKinds() []string { return []string{TargetLocal, TargetSim, TargetKubernetes} }

// RunField returns the field of an App that says how to run it on targets of kind k:
// "run" (a process) for local and sim, "container" for kubernetes; "" for an unknown kind.
func RunField(k string) string {
	switch k {
	case TargetLocal, TargetSim:
		return "run"
	case TargetKubernetes:
		return "container"
	}
	return ""
}

var envName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ValidEnvironmentName returns EINVALID unless name can name an environment: a DNS label
// (1 to 63 lowercase letters, digits and '-'), as it names data directories, namespaces and
// URL paths.
func ValidEnvironmentName(name string) error {
	switch {
	case name == "":
		return Errorf(EINVALID, "environment name is empty; use lowercase letters, digits and '-', like staging")
	case len(name) > 63:
		return Errorf(EINVALID, "environment name %.20q… is %d characters long; use at most 63", name, len(name))
	case !envName.MatchString(name):
		return Errorf(EINVALID, "environment name %q is not valid; use lowercase letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return nil
}

type envKey struct{}

// WithEnvironment returns ctx naming the environment a request is about.
func WithEnvironment(ctx context.Context, env string) context.Context {
	return context.WithValue(ctx, envKey{}, env)
}

// EnvironmentFrom returns the environment WithEnvironment put in ctx, DefaultEnvironment
// when none.
func EnvironmentFrom(ctx context.Context) string {
	if env, _ := ctx.Value(envKey{}).(string); env != "" {
		return env
	}
	return DefaultEnvironment
}

// Event kinds of environments.
const (
	EventEnvironmentCreated = "environment.created"
	EventEnvironmentUpdated = "environment.updated"
)

// EnvironmentStore keeps the environments a server serves besides its default one.
// Implementation: sqlite.Store.
type EnvironmentStore interface {
	// Environments lists them by name.
	Environments(ctx context.Context) ([]Environment, error)
	// PutEnvironments creates or replaces envs and stores events, in one transaction.
	PutEnvironments(ctx context.Context, envs []Environment, events []Event) error
}
