package local

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"slipway.dev/slipway"
)

// stateFileName is the file under DataDir that lets a restarted server find its processes.
const stateFileName = "instances.json"

// stateFile is what instances.json holds: the last desired state of every app (so that a
// restarted server serves traffic again before the engine re-applies) and every instance
// process.
type stateFile struct {
	Apps      []slipway.Desired `json:"apps"`
	Instances []instanceRecord  `json:"instances"`
}

// instanceRecord identifies one instance process across a restart of the server.
type instanceRecord struct {
	App      string `json:"app"`
	Revision string `json:"revision"`
	ID       string `json:"id"`
	PID      int    `json:"pid"`
	Port     int    `json:"port"`
	// StartTime is the process start time in clock ticks since boot (/proc/<pid>/stat field
	// 22); with the pid it names the process, even after the pid is reused.
	StartTime uint64 `json:"startTime"`
	Restarts  int    `json:"restarts,omitempty"`
	// Spec is how the revision runs, so that an adopted instance can be probed and restarted
	// before the engine applies again.
	Spec slipway.RevisionSpec `json:"spec"`
	// Version is the revision's version label.
	Version string `json:"version,omitempty"`
	// Ready says the instance was taking traffic when the state was written for a handover
	// (it is set only then): the next server serves its inherited listeners once such
	// instances are ready again.
	Ready bool `json:"ready,omitempty"`
}

// persist writes the state file if it changed: a temporary file, then a rename, so a crash
// leaves either the old file or the new one. Errors are logged: the live world is not
// worse for a state file that lags, only a later adoption is. Before Run has read the file,
// and while the platform is held (the file belongs to the handover), it is left alone.
func (p *Platform) persist() {
	if !p.restored.Load() || p.isHeld() {
		return
	}
	if err := p.save(false); err != nil {
		p.log.Error("state not saved", "err", err)
	}
}

// save writes the state file if it changed. For a handover it leaves out the instances
// being stopped (this server finishes stopping them) and records which instances take
// traffic.
func (p *Platform) save(handover bool) error {
	if p.cfg.DataDir == "" {
		return nil
	}
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	b, err := json.MarshalIndent(p.snapshot(handover), "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if bytes.Equal(b, p.lastState) {
		return nil
	}
	if err := writeAtomic(filepath.Join(p.cfg.DataDir, stateFileName), b); err != nil {
		return err
	}
	p.lastState = b
	return nil
}

// snapshot collects what save writes, sorted so that equal states give equal bytes.
func (p *Platform) snapshot(handover bool) stateFile {
	p.mu.Lock()
	apps := make([]*app, 0, len(p.apps))
	for _, a := range p.apps {
		apps = append(apps, a)
	}
	p.mu.Unlock()
	slices.SortFunc(apps, func(x, y *app) int { return strings.Compare(x.name, y.name) })
	st := stateFile{Apps: []slipway.Desired{}, Instances: []instanceRecord{}}
	for _, a := range apps {
		a.mu.Lock()
		if a.desired != nil && (len(a.desired.Revisions) > 0 || a.desired.Traffic != (slipway.Traffic{})) {
			st.Apps = append(st.Apps, *a.desired)
		}
		for _, in := range a.instances {
			if in.pid <= 0 || (handover && in.stopping) {
				continue
			}
			st.Instances = append(st.Instances, instanceRecord{
				App: a.name, Revision: in.rev, ID: in.id, PID: in.pid, Port: in.port,
				StartTime: in.startTime, Restarts: in.restarts, Spec: in.spec, Version: in.version,
				Ready: handover && in.ready && !in.draining,
			})
		}
		a.mu.Unlock()
	}
	slices.SortFunc(st.Instances, func(x, y instanceRecord) int {
		if c := strings.Compare(x.App, y.App); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return st
}

// writeAtomic replaces path with b through a temporary file in the same directory.
func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, ".instances-*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// loadState reads the state file; a missing file is an empty state.
func (p *Platform) loadState() (stateFile, error) {
	var st stateFile
	if p.cfg.DataDir == "" {
		return st, nil
	}
	b, err := os.ReadFile(filepath.Join(p.cfg.DataDir, stateFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read state %s: %w", stateFileName, err)
	}
	return st, nil
}

// restore brings back what the state file holds, before any supervisor runs: the desired
// state of each app that was not applied since New, and every instance whose process is
// still alive with the same start time (it is adopted: watched and probed, not started
// again). An instance whose process is gone, or whose pid now names another process, is
// dropped; its app's supervisor starts a replacement if the app still wants one.
func (p *Platform) restore() error {
	st, err := p.loadState()
	if err != nil {
		return err
	}
	for _, d := range st.Apps {
		if validate(d) != nil {
			p.log.Warn("saved app state dropped", "app", d.App)
			continue
		}
		a, _ := p.ensure(d.App)
		a.mu.Lock()
		if a.desired == nil {
			a.desired = cloneDesired(d)
		}
		a.mu.Unlock()
	}
	for _, rec := range st.Instances {
		log := p.log.With("app", rec.App, "instance", rec.ID, "pid", rec.PID)
		rev, _, ok := parseID(rec.ID)
		if !ok || rev != rec.Revision || !safeName(rec.App) || !safeName(rec.ID) {
			log.Warn("saved instance dropped", "reason", "bad record")
			continue
		}
		if !running(rec.PID, rec.StartTime) {
			log.Info("saved instance dropped", "reason", "process gone")
			continue
		}
		a, _ := p.ensure(rec.App)
		a.adopt(rec)
		log.Info("instance adopted", "port", rec.Port)
	}
	return nil
}
