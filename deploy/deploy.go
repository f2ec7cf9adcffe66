// Package deploy holds Cairn's deployment files (nginx, Kubernetes, Docker). It has
// no code: its tests run and validate those files as shipped.
package deploy
