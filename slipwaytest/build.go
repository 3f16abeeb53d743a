package slipwaytest

import (
	"context"
	"os"
	"os/exec"
)

// GoBuild returns the command that builds the main package pkg into out as slipway's image
// is built (cmd/slipway-image): no cgo, -trimpath, no VCS stamp, the architecture's baseline
// instruction set. The tests that build a binary use it, so that they share one compile of
// slipway's packages in Go's build cache, with each other and with the image's tests, instead
// of compiling everything again under other flags.
func GoBuild(pkg, out string) *exec.Cmd {
	cmd := exec.CommandContext(context.Background(), "go", "build", "-trimpath", "-buildvcs=false", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOEXPERIMENT=",
		"GOAMD64=v1", "GOARM64=v8.0", "GOARM=7", "GO386=sse2")
	return cmd
}
