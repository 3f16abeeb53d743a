package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"slipway.dev/slipway"
	"slipway.dev/slipway/logfile"
)

// LogKeep is how many rotated log files an instance keeps (<id>.log.1 newest to
// <id>.log.3 oldest).
const LogKeep = 3

// logDir returns the directory of app's instance logs.
func (p *Platform) logDir(app string) string {
	return filepath.Join(p.cfg.DataDir, "logs", app)
}

// logPath returns the log file of instance id of app.
func (p *Platform) logPath(app, id string) string {
	return filepath.Join(p.logDir(app), id+".log")
}

// openLog opens an instance's log for appending, creating it and its directory. The
// process gets the file itself as stdout and stderr (not a pipe), so it keeps logging when
// the server is gone and after it is adopted by a new one.
func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return f, nil
}

// rotateLog rotates path when it has grown to max bytes: <path>.2 becomes <path>.3 and so
// on, the live file is copied to <path>.1 and then truncated. Copy-then-truncate keeps the
// process writing to the same file (it appends, so its next write lands at the new end);
// lines written between the copy and the truncation are lost, which is the price of not
// owning the process's output through a pipe. It reports whether it rotated.
func rotateLog(path string, max int64) (bool, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil // nothing logged yet
	case err != nil:
		return false, fmt.Errorf("rotate log: %w", err)
	case fi.Size() < max:
		return false, nil
	}
	for i := LogKeep - 1; i >= 1; i-- {
		err := os.Rename(path+"."+strconv.Itoa(i), path+"."+strconv.Itoa(i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("rotate log: %w", err)
		}
	}
	src, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("rotate log: %w", err)
	}
	defer src.Close()
	dst, err := os.Create(path + ".1")
	if err != nil {
		return false, fmt.Errorf("rotate log: %w", err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		return false, fmt.Errorf("rotate log: %w", err)
	}
	if err := dst.Close(); err != nil {
		return false, fmt.Errorf("rotate log: %w", err)
	}
	if err := os.Truncate(path, 0); err != nil {
		return false, fmt.Errorf("rotate log: %w", err)
	}
	return true, nil
}

// logFiles returns the log files of app's instances of revision (every revision when
// revision is ""): per instance, oldest rotated file first and the live file last. Files of
// stopped instances are included until they are deleted. It returns EINVALID for a name
// that cannot be a file name and ENOTFOUND when there is no log.
func (p *Platform) logFiles(app, revision string) ([]string, error) {
	if !safeName(app) || (revision != "" && !safeName(revision)) {
		return nil, slipway.Errorf(slipway.EINVALID, "logs of %q revision %q: not a valid name", app, revision)
	}
	entries, err := os.ReadDir(p.logDir(app))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("logs of %s: %w", app, err)
	}
	type file struct {
		rev     string
		ordinal int
		gen     int // 0 for the live file, n for <id>.log.n
		path    string
	}
	var files []file
	for _, e := range entries {
		name := e.Name()
		id, gen, ok := parseLogName(name)
		if !ok {
			continue
		}
		rev, ordinal, ok := parseID(id)
		if !ok || (revision != "" && rev != revision) {
			continue
		}
		files = append(files, file{rev: rev, ordinal: ordinal, gen: gen, path: filepath.Join(p.logDir(app), name)})
	}
	if len(files) == 0 {
		if revision == "" {
			return nil, slipway.Errorf(slipway.ENOTFOUND, "no logs for app %s", app)
		}
		return nil, slipway.Errorf(slipway.ENOTFOUND, "no logs for revision %s of app %s", revision, app)
	}
	slices.SortFunc(files, func(a, b file) int {
		if c := strings.Compare(a.rev, b.rev); c != 0 {
			return c
		}
		if a.ordinal != b.ordinal {
			return a.ordinal - b.ordinal
		}
		return gen(b.gen) - gen(a.gen) // oldest (highest n) first, live file (0) last
	})
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.path
	}
	return out, nil
}

// LogInstances returns the instances of app (of revision; every revision when "") that
// have a live log file, sorted by ID (slipway.LogSource). Instances that stopped keep
// their logs until the files are deleted.
func (p *Platform) LogInstances(ctx context.Context, app, revision string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	files, err := p.logFiles(app, revision)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		if id, ok := strings.CutSuffix(filepath.Base(f), ".log"); ok {
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		return nil, slipway.Errorf(slipway.ENOTFOUND, "no logs for app %s", app)
	}
	slices.Sort(out)
	return out, nil
}

// TailLog returns the last n lines of instance's live log file and the byte offset after
// them (slipway.LogSource).
func (p *Platform) TailLog(ctx context.Context, app, instance string, n int) ([][]byte, slipway.LogPosition, error) {
	path, err := p.instanceLog(ctx, app, instance)
	if err != nil {
		return nil, 0, err
	}
	lines, end, err := logfile.Tail(path, n)
	return lines, slipway.LogPosition(end), err
}

// ReadLog returns the complete lines of instance's live log file after byte offset from,
// following a rotation (slipway.LogSource).
func (p *Platform) ReadLog(ctx context.Context, app, instance string, from slipway.LogPosition) ([][]byte, slipway.LogPosition, error) {
	path, err := p.instanceLog(ctx, app, instance)
	if err != nil {
		return nil, from, err
	}
	lines, end, err := logfile.ReadFrom(path, int64(from))
	return lines, slipway.LogPosition(end), err
}

// instanceLog returns the live log file of app's instance.
func (p *Platform) instanceLog(ctx context.Context, app, instance string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if !safeName(app) || !safeName(instance) {
		return "", slipway.Errorf(slipway.EINVALID, "log of %q instance %q: not a valid name", app, instance)
	}
	return p.logPath(app, instance), nil
}

var _ slipway.LogSource = (*Platform)(nil)

// gen orders generations so that the live file (0) sorts after every rotated one.
func gen(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// parseLogName splits "<id>.log" or "<id>.log.<n>".
func parseLogName(name string) (id string, gen int, ok bool) {
	if id, ok := strings.CutSuffix(name, ".log"); ok {
		return id, 0, true
	}
	i := strings.LastIndex(name, ".log.")
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(name[i+len(".log."):])
	if err != nil || n < 1 {
		return "", 0, false
	}
	return name[:i], n, true
}

// parseID splits an instance ID "<revision>-<n>".
func parseID(id string) (rev string, ordinal int, ok bool) {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(id[i+1:])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return id[:i], n, true
}

// safeName reports whether s can be used as one file name: letters, digits, '.', '_' and
// '-', and not "." or "..".
func safeName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 200 {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}
