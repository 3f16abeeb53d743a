package validate

import (
	"fmt"
	"net/url"
	"path"

	"slipway.dev/slipway"
)

// Limits of a notification.
const (
	maxNotifyFilters = 32
	maxNotifyPattern = 128
	maxNotifyURL     = 2048
)

// checkNotification checks a Notification: where it posts, how, and its filters.
func checkNotification(p *problems, n *slipway.Notification) {
	switch {
	case n.URL == "" && n.URLFrom == nil:
		p.add("spec.url", "required; the URL that receives the events (or spec.urlFrom: {env: NAME} or {file: PATH} for a secret one)")
	case n.URL != "" && n.URLFrom != nil:
		p.add("spec.urlFrom", "give spec.url or spec.urlFrom, not both")
	case n.URL != "":
		if len(n.URL) > maxNotifyURL {
			p.add("spec.url", "%d bytes; use at most %d", len(n.URL), maxNotifyURL)
		} else if u, err := url.Parse(n.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add("spec.url", "%q is not an http or https URL; use one like https://hooks.example/slipway", n.URL)
		}
	}
	checkSecretFrom(p, "spec.urlFrom", n.URLFrom)
	checkSecretFrom(p, "spec.secretFrom", n.SecretFrom)
	switch n.Format {
	case "", slipway.NotifyJSON, slipway.NotifySlack:
	default:
		p.add("spec.format", "%q is not a format; use json (the default) or slack", n.Format)
	}
	for field, list := range map[string][]string{"spec.apps": n.Apps, "spec.environments": n.Environments, "spec.kinds": n.Kinds} {
		if len(list) > maxNotifyFilters {
			p.add(field, "%d entries; use at most %d", len(list), maxNotifyFilters)
		}
		for i, pat := range list {
			if _, err := path.Match(pat, ""); err != nil || pat == "" || len(pat) > maxNotifyPattern {
				p.add(fmt.Sprintf("%s[%d]", field, i), "%q is not a pattern; use a name or a glob like release.* (at most %d bytes)", pat, maxNotifyPattern)
			}
		}
	}
}

// checkSecretFrom checks where a secret is read from: exactly one of env and file.
func checkSecretFrom(p *problems, field string, s *slipway.SecretFrom) {
	if s == nil {
		return
	}
	switch {
	case (s.Env == "") == (s.File == ""):
		p.add(field, "name exactly one of env (an environment variable of the server) and file (a path on the server)")
	case s.File != "" && !path.IsAbs(s.File):
		p.add(field+".file", "%q is not an absolute path; the server reads it, from wherever it runs", s.File)
	}
}
