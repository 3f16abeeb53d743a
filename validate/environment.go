package validate

import (
	"strings"

	"slipway.dev/slipway"
)

// Limits of an environment's labels.
const (
	maxLabels        = 64
	maxLabelValueLen = 63
)

// checkEnvironmentName checks an Environment's name: a DNS label.
func checkEnvironmentName(p *problems, name string) {
	if err := slipway.ValidEnvironmentName(name); err != nil {
		p.add("metadata.name", "%s", slipway.ErrorMessage(err))
	}
}

// checkEnvironment checks an Environment: its labels and its target.
func checkEnvironment(p *problems, e *slipway.Environment) {
	if len(e.Labels) > maxLabels {
		p.add("metadata.labels", "%d labels; use at most %d", len(e.Labels), maxLabels)
	}
	for k, v := range e.Labels {
		if err := slipway.ValidKey("label key", k); err != nil {
			p.add("metadata.labels", "%s", slipway.ErrorMessage(err))
		}
		if err := slipway.ValidLabel("label "+k, v, maxLabelValueLen); err != nil {
			p.add("metadata.labels."+k, "%s", slipway.ErrorMessage(err))
		}
	}
	t := e.Target
	kinds := strings.Join(slipway.TargetKinds(), ", ")
	switch {
	case t.Kind == "":
		p.add("spec.target.kind", "required; use one of %s", kinds)
		return
	case slipway.RunField(t.Kind) == "":
		p.add("spec.target.kind", "%q is not a target; use one of %s", t.Kind, kinds)
		return
	}
	switch k := t.Kubernetes; {
	case t.Kind == slipway.TargetKubernetes && k == nil:
		p.add("spec.target.kubernetes", "required for target kubernetes; name at least its namespace")
	case t.Kind == slipway.TargetKubernetes:
		if err := slipway.ValidEnvironmentName(k.Namespace); err != nil {
			p.add("spec.target.kubernetes.namespace", "required, a DNS label like web-production: %s", slipway.ErrorMessage(err))
		}
	case k != nil:
		p.add("spec.target.kubernetes", "only for target kubernetes, not %s; remove it", t.Kind)
	}
}

// checkRunForms checks, for each app whose environment is among the documents, that it
// says how to run in the way that environment's target runs apps: spec.run (a process) for
// local and sim, spec.container for kubernetes. An app of an environment defined elsewhere
// is checked by the server that knows it.
func checkRunForms(docs []Document, found []problems) {
	targets := map[string]string{}
	for _, d := range docs {
		if d.Environment != nil {
			targets[d.Environment.Name] = d.Environment.Target.Kind
		}
	}
	for i, d := range docs {
		if d.App == nil {
			continue
		}
		env := d.App.EnvironmentName()
		kind, ok := targets[env]
		if !ok {
			continue
		}
		if msg := RunFormProblem(d.App, env, kind); msg != "" {
			path := "spec.run"
			if slipway.RunField(kind) == "run" {
				path = "spec.container"
			}
			found[i].add(path, "%s", msg)
		}
	}
}

// RunFormProblem says why app cannot run in environment env whose target is of kind
// targetKind ("" when it can): a process (spec.run) on local and sim, a container
// (spec.container) on kubernetes.
func RunFormProblem(app *slipway.App, env, targetKind string) string {
	switch slipway.RunField(targetKind) {
	case "run":
		if app.Container != nil {
			return "environment " + env + " runs apps as processes (target " + targetKind + "); use spec.run instead of spec.container"
		}
	case "container":
		if app.Container == nil {
			return "environment " + env + " runs apps on kubernetes; use spec.container (an image) instead of spec.run"
		}
	}
	return ""
}
