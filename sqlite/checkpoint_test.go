package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// TestStore_CheckpointsBesideTheWriter: the write connection never checkpoints; the store's
// own checkpoints copy the log into the database file, the log starts over once all of it
// was copied, and under unbroken writes it grows no further than about maxLog pages.
func TestStore_CheckpointsBesideTheWriter(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	s.maxLog = 200
	commit(t, s, &slipway.Change{Apps: []slipway.AppState{testApp("web")}})
	var auto int
	if err := s.w.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("write connection's wal_autocheckpoint = %d (%v), want 0", auto, err)
	}
	// Records for several checkpoints, in Changes of one rollout and one event, from
	// enough goroutines that writes never pause.
	step := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range n / 16 {
					id := fmt.Sprintf("web-%d-%d-%d", n, g, i)
					c := &slipway.Change{Rollouts: []slipway.Rollout{testRollout(id, "web", 1_000_000*g+1000*n+i+1, "a", "b")},
						Events: []slipway.Event{testEvent("web", id, strings.Repeat("x", 500))}}
					if err := s.Commit(ctx, c); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	step(4 * checkpointEvery)
	s.checkpoints.Wait()
	wal, err := os.Stat(s.Path() + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	// Without checkpoints, or without the log starting over, it would hold every page
	// written: about 60 MiB here. With them it holds what is written between two
	// checkpoints and during one, a few thousand pages.
	if wal.Size() > 24<<20 {
		t.Errorf("log file is %d MiB after unbroken writes, want it bounded", wal.Size()>>20)
	}
	db, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if db.Size() < 4<<20 {
		t.Errorf("database file is %d bytes: the checkpoints copied little into it", db.Size())
	}
	// Once all of the log was copied, the next write starts it over.
	if _, err := s.checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	step(16)
	s.checkpoints.Wait()
	logged, err := s.checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if logged > 200 {
		t.Errorf("log holds %d pages after a few writes that followed a whole checkpoint, want it started over", logged)
	}
}

// killChildEnv names the store file a child process of TestStore_CommitsSurviveAKill writes
// to until it is killed.
const killChildEnv = "SLIPWAY_SQLITE_KILL_CHILD"

// TestStore_CommitsSurviveAKill runs concurrent Commits (group commit, checkpoints on their
// own connection) in a child process, kills it (SIGKILL) at a moment the test does not
// choose, and reopens the file: every Commit that returned is there whole, rollout and
// event, and the file is intact.
func TestStore_CommitsSurviveAKill(t *testing.T) {
	if path := os.Getenv(killChildEnv); path != "" {
		killChild(path)
		return
	}
	if testing.Short() {
		t.Skip("runs a child process for seconds")
	}
	for round := range 3 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "slipway.db")
			cmd := exec.Command(os.Args[0], "-test.run=^TestStore_CommitsSurviveAKill$")
			cmd.Env = append(os.Environ(), killChildEnv+"="+path)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Each line is a rollout whose Commit returned. Kill after a different number
			// of them each round, some checkpoints in.
			stopAt := (round + 2) * 1500
			var committed []string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				committed = append(committed, sc.Text())
				if len(committed) == stopAt {
					_ = cmd.Process.Signal(syscall.SIGKILL)
					break
				}
			}
			_ = cmd.Wait()
			if len(committed) < stopAt {
				t.Fatalf("child wrote %d commits, then stopped before it was killed", len(committed))
			}

			s := openAt(t, path, nil)
			ctx := context.Background()
			var ok string
			if err := s.r.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
				t.Fatalf("integrity_check = %q, %v", ok, err)
			}
			for _, id := range committed {
				r, err := s.Rollout(ctx, id)
				if err != nil || r.Version != 1 {
					t.Fatalf("rollout %s reported committed: %+v, %v", id, r, err)
				}
				evs, err := s.Events(ctx, slipway.EventFilter{Rollout: id})
				if err != nil || len(evs) != 1 {
					t.Fatalf("events of %s reported committed: %d, %v", id, len(evs), err)
				}
			}
		})
	}
}

// killChild commits rollouts from 16 goroutines, printing each one's ID once its Commit
// returned, until the parent kills the process.
func killChild(path string) {
	s, err := Open(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	app := testApp("web")
	if err := s.Commit(ctx, &slipway.Change{Apps: []slipway.AppState{app}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	for g := range 16 {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("web-%d-%d", g, i)
				c := &slipway.Change{Rollouts: []slipway.Rollout{testRollout(id, "web", 1_000_000*g+i+1, "a", "b")},
					Events: []slipway.Event{testEvent("web", id, strings.Repeat("x", 200))}}
				if err := s.Commit(ctx, c); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintln(w, id)
				_ = w.Flush()
				mu.Unlock()
			}
		}()
	}
	// The parent kills this process while it commits; the minute only bounds a child whose
	// parent died, so that it does not commit forever.
	time.Sleep(time.Minute)
	fmt.Fprintln(os.Stderr, "not killed within a minute")
	os.Exit(2)
}
