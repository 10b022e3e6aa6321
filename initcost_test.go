package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoCostlyInit keeps regexp compilation out of tokken's package
// initialisers, which run in every Lambda cold start before the first
// request is read: a package-level pattern is built on first use
// (sync.OnceValue), or the check is written without one. It reads the
// packages both builds link.
func TestNoCostlyInit(t *testing.T) {
	fset := token.NewFileSet()
	seen := map[string]bool{}
	for _, tags := range []string{"", "lambda.norpc,ingress"} {
		out, err := exec.Command("go", "list", "-deps", "-tags", tags,
			"-f", `{{if not .Standard}}{{.ImportPath}}|{{.Dir}}|{{join .GoFiles ","}}{{end}}`, ".").CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps -tags %q: %v\n%s", tags, err, out)
		}
		for _, line := range strings.Fields(string(out)) {
			path, rest, _ := strings.Cut(line, "|")
			dir, files, _ := strings.Cut(rest, "|")
			if path != "github.com/tokken/tokken" && !strings.HasPrefix(path, "github.com/tokken/tokken/") {
				continue
			}
			for _, name := range strings.Split(files, ",") {
				file := filepath.Join(dir, name)
				if name == "" || seen[file] {
					continue
				}
				seen[file] = true
				f, err := parser.ParseFile(fset, file, nil, 0)
				if err != nil {
					t.Fatal(err)
				}
				for _, pos := range initCompiles(f) {
					t.Errorf("%s: a package-level regexp is compiled at process start; build it on first use (sync.OnceValue)", fset.Position(pos))
				}
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no package of tokken's listed")
	}
}

// initCompiles returns where f's package-level variables compile a regexp
// in their initialiser, outside a function literal.
func initCompiles(f *ast.File) []token.Pos {
	var found []token.Pos
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, s := range g.Specs {
			for _, v := range s.(*ast.ValueSpec).Values {
				ast.Inspect(v, func(n ast.Node) bool {
					switch n := n.(type) {
					case *ast.FuncLit:
						return false // runs when called, not at start
					case *ast.CallExpr:
						if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
							if x, ok := sel.X.(*ast.Ident); ok && x.Name == "regexp" && strings.Contains(sel.Sel.Name, "Compile") {
								found = append(found, n.Pos())
							}
						}
					}
					return true
				})
			}
		}
	}
	return found
}
