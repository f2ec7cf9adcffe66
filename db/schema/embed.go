// Package schema embeds the goose migrations so the binary can migrate itself.
package schema

import "embed"

// FS holds every migration file, in goose's naming order.
//
//go:embed *.sql
var FS embed.FS
