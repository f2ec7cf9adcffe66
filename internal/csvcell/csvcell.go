// Package csvcell makes text safe to put in a CSV cell that a spreadsheet will open.
package csvcell

// Safe stops a value that starts like a formula (=, +, -, @, tab, carriage return)
// from being run by a spreadsheet that opens the export, by prefixing a quote.
func Safe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r') {
		return "'" + s
	}
	return s
}
