package views

import (
	"net/url"
	"strings"
)

// SafeHref returns u when it is an http(s) URL and "" otherwise, so a stored URL
// (javascript:, data:, …) never becomes a link that runs script.
func SafeHref(u string) string {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return ""
	}
	return u
}

// hostOf names the site a URL is on, without "www.", for a result's source line.
func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(p.Hostname(), "www.")
}
