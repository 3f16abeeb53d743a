package slipway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// App is a named service: how to run one instance, how many, its health checks, its traffic
// entry and the strategy that moves it to a new revision.
type App struct {
	Name string `json:"name"`
	// Environment is where the app runs (DefaultEnvironment when ""): the same name in two
	// environments is two apps.
	Environment string `json:"environment,omitempty"`
	Replicas    int    `json:"replicas"`
	// Version is a label the user reads ("v2", a git sha). It is part of the revision.
	Version string `json:"version,omitempty"`
	// Run says how to run an instance as a process (targets local and sim); Container, as
	// a container (target kubernetes). An app has the one its environment's target runs.
	Run       RunSpec        `json:"run"`
	Container *ContainerSpec `json:"container,omitempty"`
	// Sidecars run beside Container in each instance's pod (a log shipper, a proxy); they
	// take no traffic and no probes.
	Sidecars []ContainerSpec     `json:"sidecars,omitempty"`
	Health   Health              `json:"health,omitempty"`
	Traffic  Traffic             `json:"traffic,omitempty"`
	Strategy Strategy            `json:"strategy"`
	Analysis *BackgroundAnalysis `json:"analysis,omitempty"`
	// RevisionHistoryLimit is how many revisions are kept; 0 means DefaultRevisionHistoryLimit.
	RevisionHistoryLimit int `json:"revisionHistoryLimit,omitempty"`
}

// DefaultRevisionHistoryLimit is how many revisions of an app are kept when the app says nothing.
const DefaultRevisionHistoryLimit = 10

// HistoryLimit returns the number of revisions to keep.
func (a App) HistoryLimit() int {
	if a.RevisionHistoryLimit > 0 {
		return a.RevisionHistoryLimit
	}
	return DefaultRevisionHistoryLimit
}

// RunSpec says how to run one instance. Each instance gets its port in PORT, and ${PORT} is
// expanded in Args.
type RunSpec struct {
	Command string            `json:"command"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Dir     string            `json:"dir,omitempty"`
}

// ContainerSpec says how to run one instance as a container (the kubernetes target): its
// image, command and arguments, environment and the port it serves on.
type ContainerSpec struct {
	// Name names the container in the pod: "app" when "" for the app's container; required
	// of a sidecar.
	Name    string            `json:"name,omitempty"`
	Image   string            `json:"image"`
	Command []string          `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// Port is the container port that serves traffic and probes.
	Port int `json:"port,omitempty"`
	// Ports are further ports the container listens on (metrics, admin), each with a name.
	Ports []ContainerPort `json:"ports,omitempty"`
	// Resources are what the container requests of its node and may use at most.
	Resources *Resources `json:"resources,omitempty"`
}

// ContainerPort is a further named port of a container.
type ContainerPort struct {
	Name string `json:"name"`
	Port int    `json:"port"`
}

// Resources are a container's requests (what the scheduler reserves for it) and limits
// (what it may use at most), by resource name (cpu, memory, ephemeral-storage or an extended
// resource like example.com/gpu), as Kubernetes quantities like 250m, 1 or 512Mi.
type Resources struct {
	Requests map[string]Quantity `json:"requests,omitempty"`
	Limits   map[string]Quantity `json:"limits,omitempty"`
}

// Quantity is an amount of a resource as Kubernetes writes it: a number with an optional
// suffix (250m, 1.5, 512Mi, 2G). A file may write it as a string or a number.
type Quantity string

// Health holds an instance's probes. Readiness decides when it may take traffic, liveness when
// it must be restarted.
type Health struct {
	Readiness *Probe `json:"readiness,omitempty"`
	Liveness  *Probe `json:"liveness,omitempty"`
}

// Probe checks an instance by exactly one of HTTP, TCP or Exec.
type Probe struct {
	HTTP             *HTTPProbe `json:"http,omitempty"`
	TCP              *TCPProbe  `json:"tcp,omitempty"`
	Exec             *ExecProbe `json:"exec,omitempty"`
	Period           Duration   `json:"period,omitempty"`
	Timeout          Duration   `json:"timeout,omitempty"`
	SuccessThreshold int        `json:"successThreshold,omitempty"`
	FailureThreshold int        `json:"failureThreshold,omitempty"`
	InitialDelay     Duration   `json:"initialDelay,omitempty"`
}

// HTTPProbe passes when GET Path on the instance's port answers 2xx or 3xx.
type HTTPProbe struct {
	Path string `json:"path"`
}

// TCPProbe passes when the instance's port accepts a connection.
type TCPProbe struct{}

// ExecProbe passes when Command exits 0.
type ExecProbe struct {
	Command []string `json:"command"`
}

// Traffic is an app's entry: where its proxy listens, where the preview of a blue-green
// rollout listens, and how users stay on one revision.
type Traffic struct {
	Listen     string      `json:"listen,omitempty"`
	Preview    string      `json:"preview,omitempty"`
	Stickiness *Stickiness `json:"stickiness,omitempty"`
	// Route names the Gateway API HTTPRoute that splits the app's traffic on kubernetes;
	// without one, a split is approximated by the ratio of instances serving.
	Route *RouteRef `json:"route,omitempty"`
}

// RouteRef names a Gateway API HTTPRoute. The route is the user's: slipway sets only the
// weights of the app's own backends in the rules that send to the app, and adds and removes
// the rules of its header routes.
type RouteRef struct {
	Name string `json:"name"`
	// Namespace is the route's namespace ("" for the environment's own).
	Namespace string `json:"namespace,omitempty"`
}

// Stickiness keeps a user on one revision during a rollout: by a cookie slipway sets (the
// default when enabled), or by a header or cookie the app names.
type Stickiness struct {
	Enabled bool   `json:"enabled"`
	Header  string `json:"header,omitempty"`
	Cookie  string `json:"cookie,omitempty"`
}

// RevisionSpec is the part of an App that affects how an instance runs. A change to it makes a
// new Revision.
type RevisionSpec struct {
	Version   string          `json:"version,omitempty"`
	Run       RunSpec         `json:"run"`
	Container *ContainerSpec  `json:"container,omitempty"`
	Sidecars  []ContainerSpec `json:"sidecars,omitempty"`
	Health    Health          `json:"health,omitempty"`
}

// RevisionSpec returns the part of a that makes its revision. A container and sidecars are
// hashed only when set, so the revisions of an app that runs a process keep their IDs.
func (a App) RevisionSpec() RevisionSpec {
	return RevisionSpec{Version: a.Version, Run: a.Run, Container: a.Container, Sidecars: a.Sidecars, Health: a.Health}
}

// EnvironmentName returns the app's environment: DefaultEnvironment when it names none.
func (a App) EnvironmentName() string {
	if a.Environment == "" {
		return DefaultEnvironment
	}
	return a.Environment
}

// Hash returns the content hash that names a revision: 12 hex digits of the SHA-256 of the
// spec's canonical JSON (map keys sorted by encoding/json).
func (s RevisionSpec) Hash() string {
	b, err := json.Marshal(s)
	if err != nil {
		panic("slipway: revision spec does not marshal: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// Clone returns a deep copy of t.
func (t Traffic) Clone() Traffic {
	if t.Stickiness != nil {
		s := *t.Stickiness
		t.Stickiness = &s
	}
	if t.Route != nil {
		r := *t.Route
		t.Route = &r
	}
	return t
}
