package slipway

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Limits of the words users choose. App, template and flag set names have their own rules
// in package validate (DNS labels for apps, so that they can name processes, routes and
// Kubernetes objects); these cover the rest.
const (
	// MaxKeyLen caps a flag key and a variant name: they appear in URLs, metrics labels and
	// every evaluation.
	MaxKeyLen = 128
	// MaxVersionLen caps an app's version label, shown in every status line.
	MaxVersionLen = 128
	// MaxReplicas caps an app's replicas whatever the server: validate checks it offline.
	// A server's own maximum (--max-replicas, DefaultMaxReplicas) is at most this.
	MaxReplicas = 10000
	// DefaultMaxReplicas is a server's maximum of replicas per app unless configured.
	DefaultMaxReplicas = 256
)

// ValidKey returns EINVALID unless s can be a flag key or a variant name (what names it): 1
// to MaxKeyLen letters, digits, '_', '-', '.' or ':', starting with a letter or digit. Keys
// go into URL paths (/ofrep/v1/evaluate/flags/KEY), logs and terminals, so nothing that
// needs escaping there is allowed.
func ValidKey(what, s string) error {
	switch {
	case s == "":
		return Errorf(EINVALID, "%s is empty; use letters, digits, '_', '-', '.' or ':'", what)
	case len(s) > MaxKeyLen:
		return Errorf(EINVALID, "%s %s… is %d characters long; use at most %d", what, strconv.Quote(s[:32]), len(s), MaxKeyLen)
	}
	for i, r := range s {
		ok := r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			i > 0 && (r == '_' || r == '-' || r == '.' || r == ':'))
		if !ok {
			return Errorf(EINVALID, "%s %s has %s at %d; use letters, digits, '_', '-', '.' or ':', starting with a letter or digit", what, strconv.Quote(s), strconv.QuoteRune(r), i)
		}
	}
	return nil
}

// ValidLabel returns EINVALID unless s can be a free-text label such as an app's version: at
// most max bytes of valid UTF-8 without control characters.
func ValidLabel(what, s string, max int) error {
	if len(s) > max {
		return Errorf(EINVALID, "%s is %d bytes long; use at most %d", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return Errorf(EINVALID, "%s is not valid UTF-8", what)
	}
	for i, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return Errorf(EINVALID, "%s has the control character %s at byte %d", what, fmt.Sprintf("%U", r), i)
		}
	}
	return nil
}
