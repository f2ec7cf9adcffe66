package audit

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// TestActionsListsEveryAction reads this package's source for the Action
// constants, so an action added without a place in the log page's filter fails.
func TestActionsListsEveryAction(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "audit.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[Action]bool{}
	for _, a := range Actions {
		if listed[a] {
			t.Errorf("%s is listed twice", a)
		}
		listed[a] = true
	}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		spec, ok := node.(*ast.ValueSpec)
		if !ok || spec.Type == nil {
			return true
		}
		if id, ok := spec.Type.(*ast.Ident); !ok || id.Name != "Action" {
			return true
		}
		for _, v := range spec.Values {
			lit := v.(*ast.BasicLit).Value
			n++
			if !listed[Action(lit[1:len(lit)-1])] {
				t.Errorf("action %s is missing from Actions", lit)
			}
		}
		return true
	})
	if n < 20 || n != len(Actions) {
		t.Fatalf("found %d Action constants, Actions lists %d", n, len(Actions))
	}
}
