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
	// (it is set only then): the next server sets the app's traffic entry once such
	// instances are ready again.
	Ready bool `json:"ready,omitempty"`
	// Starting says a process is being started for the instance: the record is written
	// before the process starts (PID is 0 then), so that a server killed before it learnt
	// the pid still leaves the instance on record. A server that finds such a record looks
	// for the process by its marks (strays.go) and adopts it.
	Starting bool `json:"starting,omitempty"`
	// Draining says the instance is being stopped: it is written before the instance is
	// stopped and stays until its process is gone. A server that adopts it never gives it
	// traffic and stops it.
	Draining bool `json:"draining,omitempty"`
}

// persist writes the state file if it changed: a temporary file, then a rename, so a crash
// leaves either the old file or the new one. Errors are logged: what must be on record
// before it is done (a process start) uses record instead. Before Run has read the file,
// and while the platform is held (the file belongs to the handover), it is left alone.
func (p *Platform) persist() {
	if err := p.record(); err != nil {
		p.log.Error("state not saved", "err", err)
	}
}

// record writes the state file like persist, and returns why it could not.
func (p *Platform) record() error {
	if !p.restored.Load() || p.isHeld() {
		return nil
	}
	return p.save(false)
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
			if (in.pid <= 0 && !in.starting) || (handover && in.stopping) {
				continue
			}
			st.Instances = append(st.Instances, instanceRecord{
				App: a.name, Revision: in.rev, ID: in.id, PID: in.pid, Port: in.port,
				StartTime: in.startTime, Restarts: in.restarts, Spec: in.spec, Version: in.version,
				Ready: handover && in.ready && !in.draining && !in.leaving, Starting: in.starting, Draining: in.draining || in.leaving,
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
// again; one recorded as draining is stopped). An instance recorded as starting is adopted
// when its marked process is found. An instance whose process is gone, or whose pid now
// names another process, is dropped; its app's supervisor starts a replacement if the app
// still wants one.
//
// It returns the strays: marked processes of this data directory that no adopted instance
// accounts for, and live processes of records it could not adopt. The caller stops them
// (not while held: they may be the previous server's).
func (p *Platform) restore() ([]marked, error) {
	st, err := p.loadState()
	if err != nil {
		return nil, err
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
	all := scanMarked(p.mark)
	known, ids := map[int]bool{}, map[string]bool{}
	var lost []marked // live processes of records not adopted
	for _, rec := range st.Instances {
		rev, _, ok := parseID(rec.ID)
		good := ok && rev == rec.Revision && safeName(rec.App) && safeName(rec.ID)
		if rec.PID <= 0 && rec.Starting && good {
			if m, found := findStarted(all, rec.App, rec.ID); found {
				rec.PID, rec.StartTime = m.pid, m.start
			}
		}
		log := p.log.With("app", rec.App, "instance", rec.ID, "pid", rec.PID)
		if rec.PID <= 0 && rec.Starting {
			log.Info("saved instance dropped", "reason", "its process did not start")
			continue
		}
		if !running(rec.PID, rec.StartTime) {
			log.Info("saved instance dropped", "reason", "process gone")
			continue
		}
		var a *app
		if good {
			a, _ = p.ensure(rec.App)
		}
		if a == nil || !a.adopt(rec) {
			log.Warn("saved instance not adopted", "reason", "bad or repeated record")
			if info, err := procInfo(rec.PID); err == nil {
				lost = append(lost, marked{pid: rec.PID, ppid: info.ppid, pgid: info.pgid, start: rec.StartTime, app: rec.App, id: rec.ID})
			}
			continue
		}
		known[rec.PID], ids[rec.App+"/"+rec.ID] = true, true
		log.Info("instance adopted", "port", rec.Port, "draining", rec.Draining)
	}
	out := strays(all, known, ids)
	for _, m := range lost {
		if !known[m.pid] && !slices.ContainsFunc(out, func(x marked) bool { return x.pid == m.pid }) {
			out = append(out, m)
		}
	}
	return out, nil
}
