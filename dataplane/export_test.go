package dataplane

// SetServeProtocol makes Serve report protocol p, as a data plane of another build would.
func SetServeProtocol(p int) { serveProtocol = p }
