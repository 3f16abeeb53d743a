//go:build !unix

package dataplane

import (
	"errors"
	"os"
	"syscall"
)

const maxSocketPath = 108

func lockDir(string) (*os.File, error) {
	return nil, errors.New("data plane: a separate data plane process needs a unix system")
}

func detached() *syscall.SysProcAttr { return nil }

func alive(pid int) bool { return false }

func unlinked(*os.File) bool { return false }

func killDataPlane(string) (int, error) {
	return 0, errors.New("data plane: cannot kill it on this system")
}
