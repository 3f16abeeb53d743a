package local_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/platform/local"
	"slipway.dev/slipway/slipwaytest"
)

func TestPlatform_Conformance(t *testing.T) {
	slipwaytest.TestPlatform(t, harness())
}

// fastProbe checks path every 100ms.
func fastProbe(path string, failures int) *slipway.Probe {
	return &slipway.Probe{
		HTTP:             &slipway.HTTPProbe{Path: path},
		Period:           slipway.Duration(100 * time.Millisecond),
		FailureThreshold: failures,
	}
}

func TestPlatform_SplitsTrafficByWeight(t *testing.T) {
	s := start(t, local.Config{})
	c := client(t)
	const app = "split"
	v1, v2 := revision(app, "v1", slipway.Health{}), revision(app, "v2", slipway.Health{})
	d := slipway.Desired{
		App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0", Preview: "127.0.0.1:0"},
		Revisions: []slipway.Placement{place(v1, 1), place(v2, 1)},
		Split:     weights(v2, 20, v1, 80),
		Preview:   v2.ID,
	}
	d.Split.Routes = []slipway.Route{{Name: "beta", Match: []slipway.HeaderMatch{{Header: "X-Beta", Exact: "1"}}, Revision: v2.ID}}
	apply(t, s, d)
	until(t, s, app, "split in effect", func(o slipway.Observed) bool {
		return readyCount(map[string]int{v1.ID: 1, v2.ID: 1})(o) && o.Split.Equal(d.Split) && o.Preview == v2.ID
	})
	main, preview := s.ListenAddrs(app)
	if main == "" || preview == "" {
		t.Fatalf("listeners not bound: main %q preview %q", main, preview)
	}

	count := func(n int, addr string, header ...string) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range n {
			code, body, err := get(c, "http://"+addr+"/", header...)
			if err != nil || code != http.StatusOK {
				t.Fatalf("GET via %s: %d %q %v", addr, code, body, err)
			}
			a, err := parseAnswer(body)
			if err != nil {
				t.Fatal(err)
			}
			got[a.version]++
		}
		return got
	}
	// 400 requests at 20%: 80 expected, standard deviation 8.
	if got := count(400, main); got["v2"] < 40 || got["v2"] > 120 || got["v1"]+got["v2"] != 400 {
		t.Errorf("20/80 split answered %v", got)
	}
	if got := count(20, main, "X-Beta", "1"); got["v2"] != 20 {
		t.Errorf("header route answered %v, want all v2", got)
	}
	if got := count(20, preview); got["v2"] != 20 {
		t.Errorf("preview answered %v, want all v2", got)
	}

	d.Split = weights(v2, 100, v1, 0)
	apply(t, s, d)
	until(t, s, app, "all on v2", func(o slipway.Observed) bool { return o.Split.Equal(d.Split) })
	if got := count(50, main); got["v2"] != 50 {
		t.Errorf("100/0 split answered %v, want all v2", got)
	}
}

func TestPlatform_ScaleDownAndRetireUnderLoadFailNothing(t *testing.T) {
	s := start(t, local.Config{})
	c := client(t)
	const app = "load"
	v1 := revision(app, "v1", slipway.Health{}, "SLEEP=20ms")
	v2 := revision(app, "v2", slipway.Health{}, "SLEEP=20ms")
	d := slipway.Desired{App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0"}, Revisions: []slipway.Placement{place(v1, 3)}, Split: weights(v1, 100)}
	apply(t, s, d)
	until(t, s, app, "3 ready", readyCount(map[string]int{v1.ID: 3}))
	addr, _ := s.ListenAddrs(app)

	// A bounded load: 4 workers, each a POST every 20ms (about 200 requests a second with
	// the app's 20ms answers) until stopped. A POST with a body is never retried by the
	// proxy, so a request cut by a stopping instance counts as failed.
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				code, body, err := post(c, "http://"+addr+"/")
				if err != nil || code != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, strings.TrimSpace(body)+" "+errString(err))
					continue
				}
				ok.Add(1)
			}
		})
	}
	var once sync.Once
	halt := func() {
		once.Do(func() { close(stop) })
		wg.Wait()
	}
	t.Cleanup(halt)
	waitOK := func(n int64) {
		t.Helper()
		target := ok.Load() + n
		slipwaytest.Eventually(t, waitFor, fmt.Sprintf("%d more answered requests", n), func() bool { return ok.Load() >= target })
	}

	waitOK(100)
	d.Revisions = []slipway.Placement{place(v1, 1)}
	apply(t, s, d)
	until(t, s, app, "scaled down to 1", readyCount(map[string]int{v1.ID: 1}))
	waitOK(100)

	// Move to a new revision the way the engine does: start it, shift traffic, retire the old.
	d.Revisions = []slipway.Placement{place(v2, 1), place(v1, 1)}
	apply(t, s, d)
	until(t, s, app, "v2 ready", readyCount(map[string]int{v1.ID: 1, v2.ID: 1}))
	d.Split = weights(v2, 100, v1, 0)
	apply(t, s, d)
	until(t, s, app, "split on v2", func(o slipway.Observed) bool { return o.Split.Equal(d.Split) })
	d.Revisions, d.Split = []slipway.Placement{place(v2, 1)}, weights(v2, 100)
	apply(t, s, d)
	until(t, s, app, "v1 retired", readyCount(map[string]int{v2.ID: 1}))
	waitOK(100)

	halt()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during scale-down and retirement; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	if ok.Load() < 300 {
		t.Errorf("only %d requests succeeded; the load did not run", ok.Load())
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestPlatform_RestartsEndedInstances(t *testing.T) {
	s := start(t, local.Config{})
	c := client(t)
	const app = "crash"
	v1 := revision(app, "v1", slipway.Health{})
	apply(t, s, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 1)}, Split: weights(v1, 100)})
	obs := until(t, s, app, "ready", readyCount(map[string]int{v1.ID: 1}))
	in := obs.Revision(v1.ID).Instances[0]
	pid := pidAt(t, c, in.Address)

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	obs = until(t, s, app, "restarted after SIGKILL", func(o slipway.Observed) bool {
		st := o.Revision(v1.ID)
		return len(st.Instances) == 1 && st.Instances[0].Restarts == 1 && st.Instances[0].Ready
	})
	after := obs.Revision(v1.ID).Instances[0]
	if after.ID != in.ID {
		t.Errorf("restarted instance is %s, want %s kept", after.ID, in.ID)
	}
	if np := pidAt(t, c, after.Address); np == pid {
		t.Errorf("pid %d still answers after SIGKILL", pid)
	}

	// A process that exits by itself is restarted too, and the message says why.
	v2 := revision(app, "v2", slipway.Health{}, "CRASH_AFTER=1")
	apply(t, s, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v2, 1)}, Split: weights(v2, 100)})
	obs = until(t, s, app, "v2 ready", readyCount(map[string]int{v2.ID: 1}))
	_, _, _ = get(c, "http://"+obs.Revision(v2.ID).Instances[0].Address+"/")
	until(t, s, app, "v2 restarted after its exit", func(o slipway.Observed) bool {
		st := o.Revision(v2.ID)
		return len(st.Instances) == 1 && st.Instances[0].Restarts >= 1 && strings.Contains(st.Instances[0].Message, "exit status 3")
	})
}

func TestPlatform_LivenessFailureRestarts(t *testing.T) {
	s := start(t, local.Config{})
	const app = "liveness"
	v1 := revision(app, "v1", slipway.Health{Liveness: fastProbe("/live", 2)}, "FAIL_LIVE=1")
	apply(t, s, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 1)}, Split: weights(v1, 100)})
	obs := until(t, s, app, "restarted by liveness", func(o slipway.Observed) bool {
		st := o.Revision(v1.ID)
		return len(st.Instances) == 1 && st.Instances[0].Restarts >= 1
	})
	if msg := obs.Revision(v1.ID).Instances[0].Message; !strings.Contains(msg, "liveness probe failed") {
		t.Errorf("message %q does not say liveness failed", msg)
	}

	// The same app with a passing liveness probe is left alone.
	v2 := revision(app, "v2", slipway.Health{Liveness: fastProbe("/live", 2)})
	apply(t, s, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v2, 1)}, Split: weights(v2, 100)})
	obs = until(t, s, app, "v2 ready", readyCount(map[string]int{v2.ID: 1}))
	// Five liveness probes answered by the same process: a restart would start the count anew.
	c := client(t)
	lives := "http://" + obs.Revision(v2.ID).Instances[0].Address + "/lives"
	slipwaytest.Eventually(t, waitFor, "five liveness probes of v2", func() bool {
		code, body, err := get(c, lives)
		n, _ := strconv.Atoi(body)
		return err == nil && code == http.StatusOK && n >= 5
	})
	if st := until(t, s, app, "v2 ready", readyCount(map[string]int{v2.ID: 1})).Revision(v2.ID); st.Instances[0].Restarts != 0 {
		t.Errorf("healthy instance restarted: %+v", st.Instances[0])
	}
}

func TestPlatform_ReadinessFailureKeepsInstanceOutOfTraffic(t *testing.T) {
	s := start(t, local.Config{})
	c := client(t)
	const app = "readiness"
	good := revision(app, "good", slipway.Health{Readiness: fastProbe("/healthz", 1)})
	bad := revision(app, "bad", slipway.Health{Readiness: fastProbe("/healthz", 1)}, "FAIL_READY=1")
	d := slipway.Desired{
		App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0"},
		Revisions: []slipway.Placement{place(bad, 1), place(good, 1)},
		Split:     weights(bad, 50, good, 50),
	}
	apply(t, s, d)
	obs := until(t, s, app, "bad revision failing readiness", func(o slipway.Observed) bool {
		st := o.Revision(bad.ID)
		return o.Revision(good.ID).Ready() == 1 && len(st.Instances) == 1 &&
			strings.Contains(st.Instances[0].Message, "readiness probe failed")
	})
	in := obs.Revision(bad.ID).Instances[0]
	if in.Ready || in.ReadySince != nil || in.State != slipway.InstanceStarting {
		t.Errorf("instance failing readiness reported as %+v", in)
	}
	addr, _ := s.ListenAddrs(app)
	for range 40 {
		code, body, err := get(c, "http://"+addr+"/")
		if err != nil || code != http.StatusOK || !strings.HasPrefix(body, "good ") {
			t.Fatalf("request reached %q (%d, %v); want only the ready revision", body, code, err)
		}
	}
	// A split that weights only the revision with no ready instance still serves from the
	// one that has ready instances: the proxy never refuses a request another can answer.
	d.Split = weights(bad, 100)
	apply(t, s, d)
	until(t, s, app, "the split on the bad revision", func(o slipway.Observed) bool { return o.Split.WeightOf(bad.ID) == 100 })
	for range 40 {
		code, body, err := get(c, "http://"+addr+"/")
		if err != nil || code != http.StatusOK || !strings.HasPrefix(body, "good ") {
			t.Fatalf("with all weight on the unready revision, a request got %q (%d, %v); want the ready revision", body, code, err)
		}
	}
}

func TestPlatform_WritesAndRotatesLogs(t *testing.T) {
	s := start(t, local.Config{LogMaxBytes: 4 << 10})
	const app = "logs"
	v1 := revision(app, "v1", slipway.Health{}, "SPAM=1")
	apply(t, s, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 1)}, Split: weights(v1, 100)})
	obs := until(t, s, app, "ready", readyCount(map[string]int{v1.ID: 1}))
	id := obs.Revision(v1.ID).Instances[0].ID

	base := s.cfg.DataDir + "/logs/" + app + "/" + id + ".log"
	deadline := time.Now().Add(waitFor)
	for {
		paths, _ := filepath.Glob(base + "*")
		slices.Sort(paths)
		want := []string{base, base + ".1", base + ".2", base + ".3"}
		if slices.Equal(paths, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log files %v, want %v", paths, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fi, err := os.Stat(base + ".1")
	if err != nil || fi.Size() < 4<<10 {
		t.Errorf("rotated log %s: %v, size %d; want at least the rotation size", base+".1", err, size(fi))
	}
	// One more rotation must not make a fourth file.
	first, _ := os.ReadFile(base + ".3")
	slipwaytest.Eventually(t, waitFor, "the log to rotate again", func() bool {
		now, _ := os.ReadFile(base + ".3")
		return string(now) != string(first)
	})
	if _, err := os.Stat(base + ".4"); !os.IsNotExist(err) {
		t.Errorf("a fourth rotated file exists: %v", err)
	}
	ctx := t.Context()
	for _, rev := range []string{"", v1.ID} {
		if ids, err := s.LogInstances(ctx, app, rev); err != nil || !slices.Equal(ids, []string{id}) {
			t.Errorf("LogInstances(%q) = %v, %v; want [%s]", rev, ids, err, id)
		}
	}
	if _, err := s.LogInstances(ctx, app, "0123456789ab"); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Errorf("LogInstances of an unknown revision: %v, want %s", err, slipway.ENOTFOUND)
	}
	for _, bad := range []string{"../etc", "a/b", ""} {
		if _, err := s.LogInstances(ctx, bad, ""); slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("LogInstances of app %q: %v, want %s", bad, err, slipway.EINVALID)
		}
		if _, _, err := s.ReadLog(ctx, app, bad, 0); slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("ReadLog of instance %q: %v, want %s", bad, err, slipway.EINVALID)
		}
	}
	// The log is written to all the time (and rotated): a tail of 3 finds 3 lines once the
	// live file holds them.
	var end slipway.LogPosition
	deadline = time.Now().Add(waitFor)
	for {
		lines, e, err := s.TailLog(ctx, app, id, 3)
		if err != nil || len(lines) > 3 {
			t.Fatalf("TailLog = %d lines, %v; want at most 3", len(lines), err)
		}
		if len(lines) == 3 && e > 0 {
			end = e
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TailLog never found 3 lines: %d, %d", len(lines), e)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Reading on from the tail's end returns only what was written after it.
	deadline = time.Now().Add(waitFor)
	for {
		more, next, err := s.ReadLog(ctx, app, id, end)
		if err != nil {
			t.Fatal(err)
		}
		if len(more) > 0 && next != end {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ReadLog returned nothing new from a log that is written to")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func size(fi os.FileInfo) int64 {
	if fi == nil {
		return -1
	}
	return fi.Size()
}

func TestPlatform_ListenerErrors(t *testing.T) {
	s := start(t, local.Config{})
	c := client(t)
	const app = "listen"
	v1 := revision(app, "v1", slipway.Health{})
	for _, addr := range []string{"nonsense", "127.0.0.1:http-ish", "127.0.0.1:70000"} {
		err := s.Apply(t.Context(), slipway.Desired{App: app, Traffic: slipway.Traffic{Listen: addr},
			Revisions: []slipway.Placement{place(v1, 1)}, Split: weights(v1, 100)})
		if slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("listen %q: Apply error %v, want %s", addr, err, slipway.EINVALID)
		}
	}

	// A taken address is reported and retried until it is free.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := taken.Addr().String()
	apply(t, s, slipway.Desired{App: app, Traffic: slipway.Traffic{Listen: addr},
		Revisions: []slipway.Placement{place(v1, 1)}, Split: weights(v1, 100)})
	until(t, s, app, "reporting the taken address", func(o slipway.Observed) bool {
		st := o.Revision(v1.ID)
		return len(st.Instances) == 1 && strings.Contains(st.Instances[0].Message, "main listener "+addr)
	})
	if err := taken.Close(); err != nil {
		t.Fatal(err)
	}
	until(t, s, app, "listening", func(o slipway.Observed) bool {
		m, _ := s.ListenAddrs(app)
		return m == addr && readyCount(map[string]int{v1.ID: 1})(o) && o.Revision(v1.ID).Instances[0].Message == ""
	})
	if code, body, err := get(c, "http://"+addr+"/"); err != nil || code != http.StatusOK || !strings.HasPrefix(body, "v1 ") {
		t.Errorf("GET via the listener: %d %q %v", code, body, err)
	}
}

func TestPlatform_RunsTheRunSpec(t *testing.T) {
	s := start(t, local.Config{})
	c := client(t)
	const app = "runspec"
	dir := t.TempDir()
	spec := slipway.RevisionSpec{Version: "v1", Run: slipway.RunSpec{
		Command: appBin,
		Args:    []string{"-port=${PORT}", "-build=web-${VERSION}"},
		Env:     map[string]string{"VERSION": "v1", "GREETING": "hello"},
		Dir:     dir,
	}, Health: slipway.Health{Readiness: &slipway.Probe{
		// Ready once a file appears in its directory: an exec probe run in Dir. Each run
		// leaves a line in probes.
		Exec:   &slipway.ExecProbe{Command: []string{"sh", "-c", "echo >>probes; test -f ready && test -n \"$PORT\""}},
		Period: slipway.Duration(100 * time.Millisecond),
	}}}
	v1 := slipway.Revision{App: app, ID: spec.Hash(), Version: "v1", Spec: spec}
	apply(t, s, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 1)}, Split: weights(v1, 100)})

	obs := until(t, s, app, "started", func(o slipway.Observed) bool {
		st := o.Revision(v1.ID)
		return len(st.Instances) == 1 && st.Instances[0].Address != ""
	})
	addr := obs.Revision(v1.ID).Instances[0].Address
	slipwaytest.Eventually(t, waitFor, "the instance at "+addr+" to answer on the port given in ${PORT}", func() bool {
		code, _, err := get(c, "http://"+addr+"/")
		return err == nil && code == http.StatusOK
	})
	slipwaytest.Eventually(t, waitFor, "three runs of the exec probe", func() bool {
		b, _ := os.ReadFile(dir + "/probes")
		return bytes.Count(b, []byte("\n")) >= 3
	})
	if st := until(t, s, app, "observed", func(slipway.Observed) bool { return true }).Revision(v1.ID); st.Ready() != 0 {
		t.Fatalf("ready before its exec probe could pass: %+v", st.Instances)
	}
	if err := os.WriteFile(dir+"/ready", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	until(t, s, app, "ready by the exec probe", readyCount(map[string]int{v1.ID: 1}))

	port := addr[strings.LastIndexByte(addr, ':')+1:]
	for path, want := range map[string]string{"/env?name=GREETING": "hello", "/cwd": dir, "/env?name=PORT": port,
		"/args": "-port=" + port + " -build=web-v1"} { // ${PORT} and ${VERSION} expanded
		if code, body, err := get(c, "http://"+addr+path); err != nil || code != http.StatusOK || body != want {
			t.Errorf("GET %s: %d %q %v; want %q", path, code, body, err, want)
		}
	}
}

func TestPlatform_ReportsAnInstanceThatCannotStart(t *testing.T) {
	s := start(t, local.Config{})
	const app = "nostart"
	spec := slipway.RevisionSpec{Version: "v1", Run: slipway.RunSpec{Command: "/nonexistent/slipway-test-app"}}
	v1 := slipway.Revision{App: app, ID: spec.Hash(), Version: "v1", Spec: spec}
	apply(t, s, slipway.Desired{App: app, Revisions: []slipway.Placement{place(v1, 1)}, Split: weights(v1, 100)})
	obs := until(t, s, app, "failed and retried", func(o slipway.Observed) bool {
		st := o.Revision(v1.ID)
		return len(st.Instances) == 1 && st.Instances[0].State == slipway.InstanceFailed && st.Instances[0].Restarts >= 2
	})
	if in := obs.Revision(v1.ID).Instances[0]; in.Ready || !strings.Contains(in.Message, "no such file") {
		t.Errorf("instance that cannot start reported as %+v", in)
	}
	if err := s.Remove(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	until(t, s, app, "removed", func(o slipway.Observed) bool { return len(o.Revisions) == 0 })
}

func TestPlatform_StickinessAndH2C(t *testing.T) {
	s := start(t, local.Config{})
	const app = "sticky"
	v1, v2 := revision(app, "v1", slipway.Health{}), revision(app, "v2", slipway.Health{})
	d := slipway.Desired{
		App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0"},
		Revisions: []slipway.Placement{place(v1, 1), place(v2, 1)}, Split: weights(v2, 50, v1, 50),
	}
	apply(t, s, d)
	until(t, s, app, "ready", readyCount(map[string]int{v1.ID: 1, v2.ID: 1}))
	addr, _ := s.ListenAddrs(app)

	// h2c with prior knowledge.
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("h2c request: %v", err)
	}
	_ = resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Errorf("h2c request answered %s %s", resp.Proto, resp.Status)
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("cookies set without stickiness: %v", resp.Cookies())
	}

	// Turning stickiness on swaps the proxy: users now get a cookie and stay on one revision.
	d.Traffic.Stickiness = &slipway.Stickiness{Enabled: true, Header: "X-User"}
	apply(t, s, d)
	c := client(t)
	slipwaytest.Eventually(t, waitFor, "a sticky cookie after stickiness was enabled", func() bool {
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return len(resp.Cookies()) > 0
	})
	seen := map[string]bool{}
	for range 20 {
		code, body, err := get(c, "http://"+addr+"/", "X-User", "alice")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET: %d %v", code, err)
		}
		seen[strings.Fields(body)[0]] = true
	}
	if len(seen) != 1 {
		t.Errorf("user alice was served by %v; want one revision", seen)
	}
}
