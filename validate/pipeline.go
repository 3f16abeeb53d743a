package validate

import (
	"fmt"
	"strings"
	"time"

	"slipway.dev/slipway"
)

// weekdays are the names a Window's days may use.
var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// Limits of a pipeline.
const (
	maxPipelineApps  = 256
	maxStageJobs     = 16
	maxStageWindows  = 32
	maxStageFreezes  = 64
	maxSoak          = 30 * 24 * time.Hour
	maxFreezeReason  = 1024
	maxVerifyTimeout = 6 * time.Hour
)

// Weekday returns the weekday a Window's day name means ("mon"), and whether it is one.
func Weekday(name string) (time.Weekday, bool) {
	d, ok := weekdays[strings.ToLower(name)]
	return d, ok
}

// ClockTime parses a Window's "HH:MM" into minutes after midnight.
func ClockTime(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, fmt.Errorf("%q is not a time of day; use HH:MM, like 09:00", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// checkPipeline checks a Pipeline: its apps, its stages and each stage's gates and policy.
func checkPipeline(p *problems, pl *slipway.Pipeline) {
	switch {
	case len(pl.Apps) == 0:
		p.add("spec.apps", "required; name the apps whose releases flow through this pipeline")
	case len(pl.Apps) > maxPipelineApps:
		p.add("spec.apps", "%d apps; use at most %d", len(pl.Apps), maxPipelineApps)
	}
	seenApp := map[string]bool{}
	for i, a := range pl.Apps {
		path := fmt.Sprintf("spec.apps[%d]", i)
		if msg := NameProblem(a); msg != "" {
			p.add(path, "%s", msg)
		}
		if seenApp[a] {
			p.add(path, "app %s is listed twice", a)
		}
		seenApp[a] = true
	}
	switch {
	case len(pl.Stages) == 0:
		p.add("spec.stages", "required; list the stages a release goes through, first to last")
	case len(pl.Stages) > slipway.MaxPipelineStages:
		p.add("spec.stages", "%d stages; use at most %d", len(pl.Stages), slipway.MaxPipelineStages)
	}
	stageNames, envStage := map[string]bool{}, map[string]string{}
	for i, st := range pl.Stages {
		path := fmt.Sprintf("spec.stages[%d]", i)
		if msg := NameProblem(st.Name); msg != "" {
			p.add(path+".name", "%s", msg)
		} else if stageNames[st.Name] {
			p.add(path+".name", "stage %s is defined twice; give each stage its own name", st.Name)
		}
		stageNames[st.Name] = true
		switch {
		case len(st.Environments) == 0:
			p.add(path+".environments", "required; name the environment(s) the stage deploys to (several at once are a wave)")
		case len(st.Environments) > slipway.MaxStageEnvironments:
			p.add(path+".environments", "%d environments; use at most %d", len(st.Environments), slipway.MaxStageEnvironments)
		}
		for j, env := range st.Environments {
			epath := fmt.Sprintf("%s.environments[%d]", path, j)
			if err := slipway.ValidEnvironmentName(env); err != nil {
				p.add(epath, "%s", slipway.ErrorMessage(err))
				continue
			}
			if prev, ok := envStage[env]; ok {
				p.add(epath, "environment %s is already in stage %s; a release goes to each environment once", env, prev)
			}
			envStage[env] = st.Name
		}
		checkStageGates(p, path, st)
	}
}

// checkStageGates checks a stage's gates (approval, windows, freezes, error budget) and its
// policy (verification jobs, soak).
func checkStageGates(p *problems, path string, st slipway.Stage) {
	if a := st.Approval; a != nil && a.Role != "" && !a.Role.Valid() {
		p.add(path+".approval.role", "%q is not a role; use deployer (the default) or admin", a.Role)
	}
	if a := st.Approval; a != nil && a.Role == slipway.RoleViewer {
		p.add(path+".approval.role", "a viewer may not let releases in; use deployer (the default) or admin")
	}
	if len(st.Windows) > maxStageWindows {
		p.add(path+".windows", "%d windows; use at most %d", len(st.Windows), maxStageWindows)
	}
	for i, w := range st.Windows {
		wpath := fmt.Sprintf("%s.windows[%d]", path, i)
		for j, d := range w.Days {
			if _, ok := Weekday(d); !ok {
				p.add(fmt.Sprintf("%s.days[%d]", wpath, j), "%q is not a day; use mon, tue, wed, thu, fri, sat or sun", d)
			}
		}
		start, serr := ClockTime(w.Start)
		if serr != nil {
			p.add(wpath+".start", "%s", serr)
		}
		end, eerr := ClockTime(w.End)
		if eerr != nil {
			p.add(wpath+".end", "%s", eerr)
		}
		if serr == nil && eerr == nil && start == end {
			p.add(wpath+".end", "the window ends when it starts (%s); give it a length, or drop windows to allow any time", w.End)
		}
		if w.TimeZone != "" {
			if _, err := time.LoadLocation(w.TimeZone); err != nil || strings.Contains(w.TimeZone, "..") {
				p.add(wpath+".timeZone", "%q is not a time zone; use an IANA name like Europe/Paris", w.TimeZone)
			}
		}
	}
	if len(st.Freezes) > maxStageFreezes {
		p.add(path+".freezes", "%d freezes; use at most %d", len(st.Freezes), maxStageFreezes)
	}
	for i, f := range st.Freezes {
		fpath := fmt.Sprintf("%s.freezes[%d]", path, i)
		switch {
		case f.From.IsZero():
			p.add(fpath+".from", "required; an RFC 3339 time like 2026-12-20T00:00:00Z")
		case f.To.IsZero():
			p.add(fpath+".to", "required; an RFC 3339 time like 2027-01-02T00:00:00Z")
		case !f.To.After(f.From):
			p.add(fpath+".to", "%s is not after from (%s)", f.To.Format(time.RFC3339), f.From.Format(time.RFC3339))
		}
		if len(f.Reason) > maxFreezeReason {
			p.add(fpath+".reason", "%d bytes; use at most %d", len(f.Reason), maxFreezeReason)
		}
	}
	if b := st.ErrorBudget; b != nil {
		if !(b.Objective > 0 && b.Objective < 100) {
			p.add(path+".errorBudget.objective", "%v is out of range; use the promised share of good events in percent, above 0 and below 100, like 99.5", b.Objective)
		}
		// The metric gives the error ratio; the budget, not a condition, judges it.
		m := b.Metric
		if m.Name == "" {
			m.Name = "error-budget"
		}
		if m.SuccessCondition != "" || m.FailureCondition != "" {
			p.add(path+".errorBudget.metric", "takes no condition: the objective judges the error ratio it measures")
		}
		m.SuccessCondition = "result >= 0"
		checkMetric(p, path+".errorBudget.metric", m, nil)
	}
	if len(st.Verify) > maxStageJobs {
		p.add(path+".verify", "%d jobs; use at most %d", len(st.Verify), maxStageJobs)
	}
	jobNames := map[string]bool{}
	for i, v := range st.Verify {
		vpath := fmt.Sprintf("%s.verify[%d]", path, i)
		if msg := NameProblem(v.Name); msg != "" {
			p.add(vpath+".name", "%s", msg)
		} else if jobNames[v.Name] {
			p.add(vpath+".name", "verification %s is defined twice in this stage", v.Name)
		}
		jobNames[v.Name] = true
		if v.Job.Command == "" {
			p.add(vpath+".job.command", "required; the command that runs the test suite (exit 0 passes)")
		}
		if d := v.Job.Timeout.D(); d < 0 || d > maxVerifyTimeout {
			p.add(vpath+".job.timeout", "%v is out of range; use 0 (the default, 30s) to %v", d, maxVerifyTimeout)
		}
	}
	if d := st.Soak.D(); d < 0 || d > maxSoak {
		p.add(path+".soak", "%v is out of range; use 0 to %v", d, maxSoak)
	}
}

// NameProblem says why s cannot name an app, a stage or a job, or "" when it can.
func NameProblem(s string) string {
	var p problems
	checkName(&p, s)
	if len(p) == 0 {
		return ""
	}
	return p[0].msg
}

// checkPipelineApps reports an app listed by two pipelines among the documents.
func checkPipelineApps(docs []Document, found []problems) {
	owner := map[string]string{}
	for i, d := range docs {
		if d.Pipeline == nil {
			continue
		}
		for j, a := range d.Pipeline.Apps {
			if prev, ok := owner[a]; ok && prev != d.Pipeline.Name {
				found[i].add(fmt.Sprintf("spec.apps[%d]", j), "app %s is already carried by pipeline %s; an app is in one pipeline", a, prev)
				continue
			}
			owner[a] = d.Pipeline.Name
		}
	}
}
