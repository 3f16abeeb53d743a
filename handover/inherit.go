package handover

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The descriptors a restart in place passes to the new server process.
const (
	// EnvInherit names the inherited descriptors: "api=3,lock=4" (the API's listening
	// socket and the data directory's lock).
	EnvInherit = "SLIPWAY_INHERIT"
	// EnvReadyFD is the descriptor of the pipe a new server writes "ready" on.
	EnvReadyFD = "SLIPWAY_READY_FD"
	// APIKey names the API's socket in EnvInherit; LockKey the data directory's lock.
	APIKey  = "api"
	LockKey = "lock"
)

// Inheritance is what a server started by a restart in place received from the old one.
type Inheritance struct {
	API net.Listener // the API's socket; nil when not inherited
	// ready is the pipe to say "ready" on; nil for a server not started by a restart.
	Ready *os.File
	// parent is the old server's pid.
	Parent int
	// lock is the data directory's lock, held since the old server took it.
	Lock *os.File
}

// Take reads what a restart in place passed down (EnvInherit, EnvReadyFD), and clears the
// environment variables so that the processes this one starts do not see them. A listener
// under a key other than APIKey (an app listener from a server of an older version, which
// served the apps itself) is closed: the data plane serves the apps.
func Take() (*Inheritance, error) {
	inh := &Inheritance{}
	spec, readyFD := os.Getenv(EnvInherit), os.Getenv(EnvReadyFD)
	_ = os.Unsetenv(EnvInherit)
	_ = os.Unsetenv(EnvReadyFD)
	if spec == "" && readyFD == "" {
		return inh, nil
	}
	inh.Parent = os.Getppid()
	for entry := range strings.SplitSeq(spec, ",") {
		if entry == "" {
			continue
		}
		key, fds, _ := strings.Cut(entry, "=")
		fd, err := strconv.Atoi(fds)
		if err != nil || fd < 3 || key == "" {
			inh.Discard()
			return nil, fmt.Errorf("%s: bad entry %q (want key=fd)", EnvInherit, entry)
		}
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), key)
		if key == LockKey {
			inh.Lock = f
			continue
		}
		ln, err := net.FileListener(f)
		_ = f.Close()
		if err != nil {
			inh.Discard()
			return nil, fmt.Errorf("%s: %s: %w", EnvInherit, key, err)
		}
		if key == APIKey {
			inh.API = ln
		} else {
			// An app listener from a server that served traffic itself: the data plane
			// process serves the apps now.
			_ = ln.Close()
		}
	}
	if readyFD != "" {
		fd, err := strconv.Atoi(readyFD)
		if err != nil || fd < 3 {
			inh.Discard()
			return nil, fmt.Errorf("%s: bad descriptor %q", EnvReadyFD, readyFD)
		}
		syscall.CloseOnExec(fd)
		inh.Ready = os.NewFile(uintptr(fd), "ready")
	}
	return inh, nil
}

// Restarted reports whether this server was started by a restart in place.
func (inh *Inheritance) Restarted() bool { return inh.Parent != 0 }

// Listen returns the inherited API socket, or binds addr.
func (inh *Inheritance) Listen(addr string) (net.Listener, error) {
	if ln := inh.API; ln != nil {
		inh.API = nil
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Discard closes everything inherited, the lock included.
func (inh *Inheritance) Discard() {
	if inh.Lock != nil {
		_ = inh.Lock.Close()
	}
	inh.Close()
}

// Close closes whatever nothing took over (the API socket, the ready pipe).
func (inh *Inheritance) Close() {
	if inh.API != nil {
		_ = inh.API.Close()
	}
	if inh.Ready != nil {
		_ = inh.Ready.Close()
	}
}
