package plan

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEShowsThePlanTable fails when README.md's plan table differs from the
// code's; paste the printed table into the README to fix it.
func TestREADMEShowsThePlanTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := Default().Markdown()
	if !strings.Contains(string(readme), want) {
		t.Fatalf("README.md lacks the plan table of internal/plan; it should read:\n\n%s", want)
	}
}
