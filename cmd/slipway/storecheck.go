package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"slipway.dev/slipway/sqlite"
)

// storeIDFile in the data directory holds the id of the store the directory was made with.
// A store file that went missing, was truncated or was replaced by another store is then
// refused at startup, instead of starting empty and losing every app and its history.
const storeIDFile = "store.id"

// checkStoreFile refuses to start on a data directory that had a store whose file is now
// missing or empty. It runs before the store is opened (opening creates an empty one).
func checkStoreFile(dataDir, dbPath string) error {
	if _, err := os.Stat(filepath.Join(dataDir, storeIDFile)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	fi, err := os.Stat(dbPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("store %s is missing, but data directory %s had one (%s): restore it from a backup, or move the directory aside to start empty (docs/operations.md)", dbPath, dataDir, storeIDFile)
	case err != nil:
		return fmt.Errorf("store %s: %w", dbPath, err)
	case fi.Size() == 0:
		return fmt.Errorf("store %s is empty, but data directory %s had one (%s): restore it from a backup, or move the directory aside to start empty (docs/operations.md)", dbPath, dataDir, storeIDFile)
	}
	return nil
}

// checkStoreID records the store's id in the data directory on first start, and refuses a
// store other than the one recorded (a backup of the same store has the same id).
func checkStoreID(ctx context.Context, dataDir string, st *sqlite.Store) error {
	id, err := st.ID(ctx)
	if err != nil {
		return err
	}
	path := filepath.Join(dataDir, storeIDFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return writeFileAtomic(path, []byte(id+"\n"))
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if want := strings.TrimSpace(string(b)); want != id {
		return fmt.Errorf("store %s is not the store of data directory %s (its id is %s, the directory's %s): restore a backup of this directory's store, or delete %s to adopt this one", st.Path(), dataDir, id, want, path)
	}
	return nil
}
