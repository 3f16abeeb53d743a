// Package handover is restart in place: a new server process takes over from the running
// one without refusing a connection or dropping a request, and without two servers ever
// managing the same thing at once.
//
// Its parts:
//
//   - the descriptors passed to the new process (Take, EnvInherit, EnvReadyFD): the API's
//     listening socket and the data directory's lock, plus a pipe the new server writes
//     "ready" on;
//   - ListenerFile, a duplicate of a listening socket that stays non-blocking, so that both
//     processes can accept on it while they change places;
//   - Graceful, an http.Server stop that drops no request on a socket another process still
//     serves;
//   - Platform, what a platform does during the change: Handover holds it (it starts,
//     restarts and stops nothing and lets the next server take over), Resume undoes that, and
//     Settled says when the new one knows what it adopted.
//
// cmd/slipway's lifetime (restart.go) runs the sequence; platform/local implements Platform;
// the apps' traffic does not move at all (the data plane process serves it throughout).
package handover

// Platform is a platform that can hand its instances over to a new server process.
type Platform interface {
	// Handover holds the platform and writes what the next server needs to adopt its
	// instances.
	Handover() error
	// Resume ends a hold: the platform manages its instances again.
	Resume()
	// Settled is closed once the readiness of the instances adopted at start is known.
	Settled() <-chan struct{}
}
