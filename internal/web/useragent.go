package web

import "strings"

// deviceName describes a browser from its User-Agent header, as "Firefox on
// Linux": enough for a person to recognise their own devices in a list. Tokens are
// tried in order, since browsers name the ones they resemble too (Edge says
// Chrome and Safari, Chrome says Safari).
func deviceName(ua string) string {
	if ua == "" {
		return "Unknown browser"
	}
	browser := firstMatch(ua, [][2]string{
		{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
		{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"}, {"CriOS/", "Chrome"}, {"Chromium/", "Chromium"},
		{"Chrome/", "Chrome"}, {"Safari/", "Safari"}, {"curl/", "curl"}, {"Go-http-client/", "Go program"},
	})
	os := firstMatch(ua, [][2]string{
		{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"}, {"CrOS", "ChromeOS"},
		{"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"Macintosh", "macOS"}, {"Linux", "Linux"},
	})
	switch {
	case browser == "" && os == "":
		return "Unknown browser"
	case browser == "":
		return "A browser on " + os
	case os == "":
		return browser
	}
	return browser + " on " + os
}

func firstMatch(s string, table [][2]string) string {
	for _, row := range table {
		if strings.Contains(s, row[0]) {
			return row[1]
		}
	}
	return ""
}
