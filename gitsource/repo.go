package gitsource

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"slipway.dev/slipway"
	"slipway.dev/slipway/spec"
)

// Limits of what a commit's files may hold.
const (
	maxFiles     = 1000
	maxFileBytes = 4 << 20
	maxSetBytes  = 16 << 20
)

// remoteName is the remote of the private clone of a repository given by URL.
const remoteName = "origin"

// remote reports whether repo names a repository by URL (scheme://... or scp-like
// user@host:path) rather than a local path.
func remote(repo string) bool {
	if strings.Contains(repo, "://") {
		return true
	}
	at, colon := strings.Index(repo, "@"), strings.Index(repo, ":")
	return at > 0 && colon > at && !strings.Contains(repo[:at], "/")
}

// open returns the repository and the branch's head commit: a local path is read in place
// (its objects and refs as they are now); a URL is fetched into the private bare clone in
// Config.CloneDir first (made on the first look), the branch forced to the remote's so that
// a rewritten history is followed.
func (w *Watcher) open(ctx context.Context) (*git.Repository, *object.Commit, error) {
	var (
		repo *git.Repository
		ref  plumbing.ReferenceName
		err  error
	)
	if !remote(w.cfg.Repo) {
		repo, err = git.PlainOpen(w.cfg.Repo)
		if err != nil {
			return nil, nil, unavailable("open repository "+w.cfg.Repo, err)
		}
		ref = plumbing.NewBranchReferenceName(w.cfg.Branch)
	} else {
		if repo, err = w.fetch(ctx); err != nil {
			return nil, nil, err
		}
		ref = plumbing.NewRemoteReferenceName(remoteName, w.cfg.Branch)
	}
	r, err := repo.Reference(ref, true)
	if err != nil {
		return nil, nil, unavailable("find branch "+w.cfg.Branch+" of "+redact(w.cfg.Repo), err)
	}
	c, err := repo.CommitObject(r.Hash())
	if err != nil {
		return nil, nil, unavailable("read commit "+r.Hash().String(), err)
	}
	return repo, c, nil
}

// fetch brings the branch of the remote repository into the private clone.
func (w *Watcher) fetch(ctx context.Context) (*git.Repository, error) {
	dir := w.cfg.CloneDir
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, unavailable("create "+dir, err)
		}
		if repo, err = git.PlainInit(dir, true); err != nil {
			return nil, unavailable("create the clone in "+dir, err)
		}
		_, err = repo.CreateRemote(&config.RemoteConfig{Name: remoteName, URLs: []string{w.cfg.Repo}})
	}
	if err != nil {
		return nil, unavailable("open the clone in "+dir, err)
	}
	refSpec := config.RefSpec(fmt.Sprintf("+refs/heads/%s:refs/remotes/%s/%s", w.cfg.Branch, remoteName, w.cfg.Branch))
	err = repo.FetchContext(ctx, &git.FetchOptions{RemoteName: remoteName, RemoteURL: w.cfg.Repo, RefSpecs: []config.RefSpec{refSpec}, Force: true})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, unavailable("fetch branch "+w.cfg.Branch+" of "+redact(w.cfg.Repo), err)
	}
	return repo, nil
}

// read returns the set the files under Config.Path at commit c make, as `slipway apply -f`
// reads a directory: every .yaml and .yml file, in lexical order, checked as one set. A
// commit whose files are invalid (or that has no such directory) returns EINVALID with
// every problem, each with its file:line (files are named by their path in the repository).
func (w *Watcher) read(c *object.Commit) (slipway.Set, error) {
	files, err := w.files(c)
	if err != nil {
		return slipway.Set{}, err
	}
	// Templates not in the files are checked by the server's plan, which knows its own.
	known := func(string) bool { return true }
	return spec.ParseFiles(known, w.where(c), files...)
}

// files returns the YAML files under Config.Path at commit c, sorted by name.
func (w *Watcher) files(c *object.Commit) ([]spec.File, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, unavailable("read the tree of "+c.Hash.String(), err)
	}
	if w.cfg.Path != "" {
		if tree, err = tree.Tree(w.cfg.Path); err != nil {
			return nil, invalid(w.where(c), w.cfg.Path+": no such directory at this commit")
		}
	}
	var files []spec.File
	total := 0
	err = tree.Files().ForEach(func(f *object.File) error {
		if ext := path.Ext(f.Name); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		name := path.Join(w.cfg.Path, f.Name)
		switch {
		case f.Mode != filemode.Regular && f.Mode != filemode.Executable:
			return invalid(w.where(c), name+": not a regular file (a symbolic link?); slipway reads regular files only")
		case f.Size > maxFileBytes:
			return invalid(w.where(c), fmt.Sprintf("%s: %d bytes; a file may have at most %d", name, f.Size, maxFileBytes))
		case len(files) == maxFiles:
			return invalid(w.where(c), fmt.Sprintf("more than %d YAML files", maxFiles))
		}
		total += int(f.Size)
		if total > maxSetBytes {
			return invalid(w.where(c), fmt.Sprintf("the YAML files hold more than %d bytes", maxSetBytes))
		}
		s, err := f.Contents()
		if err != nil {
			return unavailable("read "+name, err)
		}
		files = append(files, spec.File{Name: name, Data: []byte(s)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, invalid(w.where(c), w.dir()+" holds no .yaml or .yml files")
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}

// dir names Config.Path for messages.
func (w *Watcher) dir() string {
	if w.cfg.Path == "" {
		return "the repository's root"
	}
	return w.cfg.Path + "/"
}

// where names the files of commit c in messages.
func (w *Watcher) where(c *object.Commit) string {
	return w.dir() + " at commit " + short(c.Hash.String())
}

// short is the abbreviated form of a commit hash.
func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// redact drops the credentials a URL may carry.
func redact(repo string) string {
	u, err := url.Parse(repo)
	if err != nil || u.User == nil {
		return repo
	}
	u.User = nil
	return u.String()
}

// sourceURL is the URL a release made from the repository names: an http(s) URL's, without
// credentials; "" for any other.
func sourceURL(repo string) string {
	u, err := url.Parse(repo)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	u.User = nil
	return u.String()
}

func unavailable(what string, err error) error {
	return fmt.Errorf("%w: %w", slipway.Errorf(slipway.EUNAVAILABLE, "git: %s", what), err)
}

func invalid(what, detail string) error {
	return &slipway.Error{Code: slipway.EINVALID, Message: "1 error in " + what, Details: []string{detail}}
}
