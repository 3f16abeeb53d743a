// Package dataplane serves the traffic of the local platform's apps: for each app a
// traffic-splitting proxy (package proxy) and its main and preview listeners. Plane does it
// in the process that calls it; Serve runs it as a process of its own (`slipway
// dataplane`), driven over a unix socket in the data directory by Client, so that the
// apps' traffic outlives the server.
//
// Why a process of its own. A server that is killed (SIGKILL, a crash, the OOM killer)
// takes its sockets and the requests in flight on them with it. The apps' instances already
// run in process groups of their own and outlive the server; with the listeners and proxies
// in the data plane process too, nothing on a request's path belongs to the server. While
// the server is away the data plane keeps its last tables: it routes by the split and to
// the instances that were ready, and its proxies move a request whose backend refuses the
// connection to another backend of the revision. The server that starts next finds it on
// its socket (Launch), learns the tables in effect (State) and, once the readiness of the
// instances it adopted is known, pushes its own (Set). A clean stop of the server stops the
// data plane last, after its listeners have closed and their requests finished.
//
// The control protocol is JSON over HTTP/1.1 on DataDir/dataplane.sock (mode 0600, in a
// data directory of mode 0700; on Linux a connection from another user is refused by its
// peer credentials): GET /v1/state (?apps=none: without the tables), PUT and DELETE
// /v1/apps/{app}, POST /v1/apps/{app}/drain?backend=ID, GET /v1/window (the builtin
// analysis provider's per-revision window), GET /metrics (the proxies' Prometheus series)
// and POST /v1/stop.
// It is level-triggered: Set carries an app's whole traffic entry, so repeating it changes
// nothing, and a server that lost track may simply send it again. Protocol names its
// version; a server replaces a data plane of another protocol.
//
// One data plane serves a data directory: it holds DataDir/dataplane.lock (flock) while it
// runs and writes its pid to DataDir/dataplane.pid. It stops by itself once the directory is
// no longer its own (the lock file was removed with the directory, or another file took the
// socket's path): no server could reach it, and its listeners would hold the apps' ports for
// a data plane of the directory made again. A socket removed by itself is bound again. It
// removes its socket and pid file only while they are still its own.
package dataplane
