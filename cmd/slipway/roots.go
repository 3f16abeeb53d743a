package main

// The Mozilla root certificates, used only where the system has none: slipway's container
// image holds nothing but the binary (cmd/slipway-image), and the server still verifies
// TLS to Prometheus, web metrics, webhooks' receivers, notifications and git remotes. On a
// machine with a CA bundle (/etc/ssl/certs) the system's roots are used as before.
import _ "golang.org/x/crypto/x509roots/fallback"
