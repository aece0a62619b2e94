package testutil

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestNoCopyOfCmpOr: no package keeps its own copy of the standard
// library's cmp.Or (Go 1.22): a function of two values of one type that
// returns the first unless it is the zero value, then the second
// (if a != "" { return a }; return b, or the same with == and the two
// swapped), whatever its name. Call cmp.Or instead.
func TestNoCopyOfCmpOr(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "build" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && isCmpOr(fn) {
				rel, _ := filepath.Rel(root, fset.Position(fn.Pos()).Filename)
				t.Errorf("%s:%d: %s is cmp.Or: call cmp.Or instead", rel, fset.Position(fn.Pos()).Line, fn.Name.Name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// isCmpOr reports whether fn is func(a, b T) T { if a != Z { return a };
// return b } or func(a, b T) T { if a == Z { return b }; return a }, with
// Z a zero literal ("", 0, nil).
func isCmpOr(fn *ast.FuncDecl) bool {
	if fn.Recv != nil || fn.Body == nil || len(fn.Body.List) != 2 || fn.Type.Results == nil || len(fn.Type.Results.List) != 1 {
		return false
	}
	var params []string
	for _, f := range fn.Type.Params.List {
		for _, n := range f.Names {
			params = append(params, n.Name)
		}
	}
	if len(params) != 2 {
		return false
	}
	ifs, ok := fn.Body.List[0].(*ast.IfStmt)
	if !ok || ifs.Init != nil || ifs.Else != nil || len(ifs.Body.List) != 1 {
		return false
	}
	cond, ok := ifs.Cond.(*ast.BinaryExpr)
	if !ok || !isZero(cond.Y) {
		return false
	}
	a, b := params[0], params[1]
	if !isIdent(cond.X, a) {
		return false
	}
	inner, last := returned(ifs.Body.List[0]), returned(fn.Body.List[1])
	switch cond.Op {
	case token.NEQ:
		return isIdent(inner, a) && isIdent(last, b)
	case token.EQL:
		return isIdent(inner, b) && isIdent(last, a)
	}
	return false
}

// returned is the one value a return statement returns, or nil.
func returned(s ast.Stmt) ast.Expr {
	if r, ok := s.(*ast.ReturnStmt); ok && len(r.Results) == 1 {
		return r.Results[0]
	}
	return nil
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// isZero reports whether e is "", 0 or nil.
func isZero(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return e.Value == `""` || e.Value == "``" || e.Value == "0"
	case *ast.Ident:
		return e.Name == "nil"
	}
	return false
}
