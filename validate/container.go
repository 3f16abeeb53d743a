package validate

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"slipway.dev/slipway"
)

// Limits of names that become Kubernetes objects' names.
const (
	// maxKubeAppName leaves room in a 63-character Service name for the longest suffix
	// slipway adds ("-preview").
	maxKubeAppName = 63 - len("-preview")
	maxPortName    = 15
	maxRouteName   = 253
	// maxHeaderRouteName leaves room in an HTTPRoute rule's name for the app's name and an
	// index.
	maxHeaderRouteName = 63
)

var (
	// portName is an IANA service name, as Kubernetes requires of a port's name.
	portName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// dnsSubdomain is a Kubernetes object name like an HTTPRoute's.
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// resourceName is cpu, memory, ephemeral-storage, hugepages-2Mi or a name with a
	// domain, like example.com/gpu.
	resourceName = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
)

// standardResources are the resources a container may name without a domain.
var standardResources = []string{"cpu", "memory", "ephemeral-storage"}

// checkOnKubernetes checks an app that runs as a container (the kubernetes target): its
// name, which names Kubernetes objects, its container, the probes the container gets, and
// its traffic entry, which is the app's Services and, for a split, an HTTPRoute.
func checkOnKubernetes(p *problems, a *slipway.App) {
	if n := a.Name; len(n) > maxKubeAppName {
		p.add("metadata.name", "%q is %d characters long; an app on kubernetes has at most %d, so that its Services (%s-preview) have valid names", n, len(n), maxKubeAppName, n)
	} else if n != "" && (n[0] < 'a' || n[0] > 'z') {
		p.add("metadata.name", "%q starts with %q; an app on kubernetes starts with a letter, as the names of its Services must", n, n[0])
	}
	c := a.Container
	switch {
	case c.Port == 0:
		p.add("spec.container.port", "required; the port the container serves on, which the app's Services send to, like 8080")
	case c.Port < 0 || c.Port > 65535:
		p.add("spec.container.port", "%d is not a port; use 1 to 65535", c.Port)
	}
	pod := podNames{containers: map[string]string{}, ports: map[string]string{}, numbers: map[int]string{}}
	checkContainer(p, "spec.container", c, &pod)
	for i := range a.Sidecars {
		sc := &a.Sidecars[i]
		path := fmt.Sprintf("spec.sidecars[%d]", i)
		if sc.Name == "" {
			p.add(path+".name", "required; name the sidecar, like log-shipper")
		}
		if sc.Port != 0 {
			p.add(path+".port", "a sidecar takes no traffic; list its ports under ports, with a name")
		}
		checkContainer(p, path, sc, &pod)
	}
	checkKubeProbe(p, "spec.health.readiness", a.Health.Readiness)
	checkKubeProbe(p, "spec.health.liveness", a.Health.Liveness)

	t := a.Traffic
	on := "on kubernetes an app is reached through its Services (NAME, NAME-stable, NAME-canary and NAME-preview) and an HTTPRoute it names in route"
	if t.Listen != "" {
		p.add("spec.traffic.listen", "%s; remove listen", on)
	}
	if t.Preview != "" {
		p.add("spec.traffic.preview", "%s; remove preview", on)
	}
	if t.Stickiness != nil {
		p.add("spec.traffic.stickiness", "slipway does not keep users on one revision on kubernetes; remove stickiness")
	}
	if r := t.Route; r != nil {
		switch {
		case r.Name == "":
			p.add("spec.traffic.route.name", "required; name the HTTPRoute whose rules send to Service %s-stable", a.Name)
		case len(r.Name) > maxRouteName || !dnsSubdomain.MatchString(r.Name):
			p.add("spec.traffic.route.name", "%q is not the name of an HTTPRoute; use lowercase letters, digits, '-' and '.', at most %d characters", r.Name, maxRouteName)
		}
		if r.Namespace != "" && !dnsLabel.MatchString(r.Namespace) {
			p.add("spec.traffic.route.namespace", "%q is not a namespace; use a DNS label like web-production, or omit it for the environment's namespace", r.Namespace)
		}
	}
	if c := a.Strategy.Canary; c != nil {
		for i, st := range c.Steps {
			hr := st.SetHeaderRoute
			if hr == nil {
				continue
			}
			path := fmt.Sprintf("spec.strategy.canary.steps[%d].setHeaderRoute", i)
			if t.Route == nil {
				p.add(path, "a header route on kubernetes is a rule of an HTTPRoute; name the route in spec.traffic.route")
			}
			if hr.Name != "" && (len(hr.Name) > maxHeaderRouteName || !dnsLabel.MatchString(hr.Name)) {
				p.add(path+".name", "%q cannot name an HTTPRoute rule; use lowercase letters, digits and '-', at most %d characters, like beta-testers", hr.Name, maxHeaderRouteName)
			}
		}
	}
}

// podNames are the names and ports already taken in a pod, each with the field path that
// took it: two containers of a pod share its network, so a port number is taken once.
type podNames struct {
	containers, ports map[string]string
	numbers           map[int]string
}

// checkContainer checks one container of the pod at path: its name, image, environment,
// further ports and resources.
func checkContainer(p *problems, path string, c *slipway.ContainerSpec, pod *podNames) {
	name := c.Name
	if name == "" && path == "spec.container" {
		name = "app"
	}
	switch {
	case name == "":
	case len(name) > 63 || !dnsLabel.MatchString(name):
		p.add(path+".name", "%q is not a container name; use at most 63 lowercase letters, digits and '-', like log-shipper", name)
	default:
		if at, ok := pod.containers[name]; ok {
			p.add(path+".name", "%q already names %s; give each container its own name", name, at)
		}
		pod.containers[name] = path
	}
	if strings.TrimSpace(c.Image) == "" {
		p.add(path+".image", "required; name the image to run, like registry.example/web:1.4")
	}
	for _, k := range sortedKeys(c.Env) {
		if k == "" || strings.ContainsAny(k, "=") || !printableASCII(k) {
			p.add(path+".env."+k, "%q is not an environment variable name; use printable ASCII letters, digits and '_' without '=', like LOG_LEVEL", k)
		}
	}
	if c.Port > 0 && c.Port <= 65535 {
		pod.numbers[c.Port] = path + ".port"
		pod.ports["http"] = path + ".port"
	}
	for i, pt := range c.Ports {
		pp := fmt.Sprintf("%s.ports[%d]", path, i)
		switch {
		case pt.Name == "":
			p.add(pp+".name", "required; name the port, like metrics")
		case len(pt.Name) > maxPortName || !portName.MatchString(pt.Name) || strings.Contains(pt.Name, "--") || !strings.ContainsAny(pt.Name, "abcdefghijklmnopqrstuvwxyz"):
			p.add(pp+".name", "%q is not a port name; use at most %d lowercase letters, digits and single '-', with at least one letter, like metrics", pt.Name, maxPortName)
		case pt.Name == "http":
			p.add(pp+".name", "\"http\" names the app's port (spec.container.port); use another name")
		default:
			if at, ok := pod.ports[pt.Name]; ok {
				p.add(pp+".name", "%q already names %s; give each port of the pod its own name", pt.Name, at)
			}
			pod.ports[pt.Name] = pp
		}
		if pt.Port < 1 || pt.Port > 65535 {
			p.add(pp+".port", "%d is not a port; use 1 to 65535", pt.Port)
			continue
		}
		if at, ok := pod.numbers[pt.Port]; ok {
			p.add(pp+".port", "%d is already %s; the containers of a pod share its ports, so list each once", pt.Port, at)
			continue
		}
		pod.numbers[pt.Port] = pp
	}
	if r := c.Resources; r != nil {
		checkResources(p, path+".resources", r)
	}
}

// checkResources checks requests and limits: known resource names, quantities Kubernetes
// reads, and no request above its limit.
func checkResources(p *problems, path string, r *slipway.Resources) {
	parsed := map[string]map[string]resource.Quantity{}
	for _, kind := range []struct {
		name string
		m    map[string]slipway.Quantity
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		parsed[kind.name] = map[string]resource.Quantity{}
		for _, k := range sortedKeys(kind.m) {
			fp := path + "." + kind.name + "." + k
			if !strings.Contains(k, "/") && !strings.HasPrefix(k, "hugepages-") && !slices.Contains(standardResources, k) {
				p.add(fp, "%q is not a resource; use cpu, memory, ephemeral-storage, hugepages-<size>, or an extended resource with its domain like example.com/gpu%s", k, didYouMean(k, standardResources))
				continue
			}
			if !resourceName.MatchString(k) {
				p.add(fp, "%q is not a resource name; use letters, digits, '-', '_' and '.', with a domain for an extended resource like example.com/gpu", k)
				continue
			}
			v := string(kind.m[k])
			q, err := resource.ParseQuantity(strings.TrimSpace(v))
			if err != nil {
				p.add(fp, "%q is not a quantity; write a number with an optional suffix, like 250m or 0.5 for CPU and 512Mi or 1G for memory", v)
				continue
			}
			if q.Sign() < 0 {
				p.add(fp, "%s is negative; use 0 or more", v)
				continue
			}
			parsed[kind.name][k] = q
		}
	}
	for _, k := range sortedKeys(parsed["requests"]) {
		req := parsed["requests"][k]
		if lim, ok := parsed["limits"][k]; ok && req.Cmp(lim) > 0 {
			p.add(path+".requests."+k, "%s is more than its limit %s; request at most the limit", r.Requests[k], r.Limits[k])
		}
	}
}

// checkKubeProbe checks what a probe needs on kubernetes: times in whole seconds, which is
// all a Kubernetes probe counts.
func checkKubeProbe(p *problems, path string, pr *slipway.Probe) {
	if pr == nil {
		return
	}
	for _, d := range []struct {
		name string
		v    slipway.Duration
	}{{"period", pr.Period}, {"timeout", pr.Timeout}, {"initialDelay", pr.InitialDelay}} {
		if d.v > 0 && time.Duration(d.v)%time.Second != 0 {
			p.add(path+"."+d.name, "%s is not whole seconds; a probe on kubernetes counts whole seconds, like 1s or 10s", d.v)
		}
	}
}

func printableASCII(s string) bool {
	for i := range len(s) {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// sortedKeys returns m's keys in order, so that problems come in the same order every time.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
