//go:build !unix

package main

import "os"

// lockDataDir takes no lock where flock is not available.
func lockDataDir(string, *os.File) (*os.File, error) { return nil, nil }

// dupFile is not needed without a lock.
func dupFile(f *os.File) (*os.File, error) { return f, nil }
