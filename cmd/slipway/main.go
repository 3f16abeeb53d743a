// Command slipway is slipway's one binary: the server and the CLI that talks to it over the
// HTTP API.
//
// Start reading at root.go (the command tree and global flags); each subcommand has its own
// file. This file holds what only main may do: signals and exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes of every command.
const (
	// exitOK: success; for plan, nothing would change.
	exitOK = 0
	// exitError: any error (bad input, unreachable server, rejected request, timeout).
	exitError = 1
	// exitChanges: plan found changes to apply.
	exitChanges = 2
	// exitAborted: a rollout that status --wait or apply --wait waited for was aborted
	// (rolled back).
	exitAborted = 3
)

// exitStatus ends a command with a given exit code. With a nil err nothing is printed.
type exitStatus struct {
	code int
	err  error
}

func (e *exitStatus) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitStatus) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit code. Errors are printed to stderr
// as "error: <message>" followed by one indented line per detail, escaped (a message may come
// from the server).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand(addServerCommand)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var es *exitStatus
	if errors.As(err, &es) {
		if es.err != nil {
			fmt.Fprintf(stderr, "error: %s\n", errorText(es.err))
		}
		return es.code
	}
	fmt.Fprintf(stderr, "error: %s\n", errorText(err))
	return exitError
}
