//go:build unix

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// checkDataDir refuses a data directory, or an admin token file, that another user could
// change: one not owned by this user, or writable by its group or others, and a token file
// that is not a plain file readable by this user only. Whoever can write there can replace
// the store or the credential.
func checkDataDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if err := ownedAndClosed(fi, 0o022); err != nil {
		return fmt.Errorf("data directory %s %w; slipway keeps its store and admin token there (chmod 700 %s)", dir, err, dir)
	}
	tok := filepath.Join(dir, adminTokenFile)
	fi, err = os.Lstat(tok)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("admin token %s is not a plain file (%s); remove it and start again to make a new one", tok, fi.Mode().Type())
	}
	if err := ownedAndClosed(fi, 0o077); err != nil {
		return fmt.Errorf("admin token %s %w (chmod 600 %s)", tok, err, tok)
	}
	return nil
}

// ownedAndClosed returns an error saying what is wrong when fi is not owned by this user or
// has any of the mode bits in open.
func ownedAndClosed(fi fs.FileInfo, open fs.FileMode) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("belongs to user %d, not to this server's user %d", st.Uid, os.Getuid())
	}
	if m := fi.Mode().Perm(); m&open != 0 {
		return fmt.Errorf("is open to other users (mode %04o)", m)
	}
	return nil
}
