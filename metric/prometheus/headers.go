package prometheus

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"slipway.dev/slipway"
)

// MaxHeaderFile is the largest file a header's value is read from.
const MaxHeaderFile = 64 << 10

// headers returns the headers a query of pm sends: its Headers as written, and its
// HeadersFrom read now from the server's environment or a file. Errors name the header and
// where its value was to come from, never the value.
func headers(pm *slipway.PrometheusMetric) (http.Header, error) {
	h := http.Header{}
	for k, v := range pm.Headers {
		if err := checkHeader(k, v); err != nil {
			return nil, err
		}
		h.Set(k, v)
	}
	for k, src := range pm.HeadersFrom {
		v, err := readSource(src)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", k, err)
		}
		if err := checkHeader(k, src.Prefix+v); err != nil {
			return nil, err
		}
		h.Set(k, src.Prefix+v)
	}
	return h, nil
}

// readSource reads the value a HeaderSource names, trimmed of surrounding white space.
func readSource(src slipway.HeaderSource) (string, error) {
	switch {
	case src.Env != "" && src.File != "":
		return "", errors.New("names both an environment variable and a file; name one")
	case src.Env != "":
		v, ok := os.LookupEnv(src.Env)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", src.Env)
		}
		if v = strings.TrimSpace(v); v == "" {
			return "", fmt.Errorf("environment variable %s is empty", src.Env)
		}
		return v, nil
	case src.File != "":
		f, err := os.Open(src.File)
		if err != nil {
			return "", fmt.Errorf("read value: %w", err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, MaxHeaderFile+1))
		if err != nil {
			return "", fmt.Errorf("read value from %s: %w", src.File, err)
		}
		if len(data) > MaxHeaderFile {
			return "", fmt.Errorf("file %s is larger than %d bytes", src.File, MaxHeaderFile)
		}
		v := strings.TrimSpace(string(data))
		if v == "" {
			return "", fmt.Errorf("file %s is empty", src.File)
		}
		return v, nil
	}
	return "", errors.New("names no environment variable or file")
}

// checkHeader refuses a header the query sets itself, and a value that would split the
// request (a line break or a NUL). The error does not quote the value, which may be a
// credential.
func checkHeader(name, value string) error {
	switch http.CanonicalHeaderKey(name) {
	case "Content-Type", "Content-Length":
		return fmt.Errorf("header %s is set by the query itself", name)
	}
	if name == "" || strings.ContainsAny(name, " \t\r\n:") {
		return fmt.Errorf("header name %q is not valid", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("header %s: the value holds a line break or NUL", name)
	}
	return nil
}
