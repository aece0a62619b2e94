package exprenv

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// secretMark begins every SecretPlaceholder.
const secretMark = "__replayctl_secret_"

// SecretPlaceholder is what stands for the i-th secret's value in the
// template FoldSecrets reads: an assert expression as written with its
// secret ${VAR} references replaced by placeholders (and the others by
// their values). It reads as a name where the value stood bare, and as text
// inside a quoted literal.
func SecretPlaceholder(i int) string { return fmt.Sprintf("%s%d__", secretMark, i) }

// ErrNotFoldable is why FoldSecrets could not separate an assertion from
// the secrets read into it.
var ErrNotFoldable = errors.New("a secret's value reaches the run's results there: only a part that reads no result (requests, latency, …) and whose outcome is true or false can be evaluated where the secret is known")

// FoldSecrets returns source, an assert expression into which secrets'
// values were interpolated, with each part that reads a secret replaced by
// its outcome, true or false: the smallest part around the secret that
// reads none of the summary (requests, latency, …) and evaluates to a
// bool. template is the same expression with the secrets replaced by
// SecretPlaceholder (it says where they stand). The result reads no secret,
// so a run can publish it for a merge to evaluate on merged totals with the
// same verdict: `"${API_TOKEN}" != "" && requests.sent > 0` is
// `true && requests.sent > 0`. Only bools are published: a number or text
// computed from a secret (len("${API_TOKEN}"), int("${MAX_KEYS}")) says more
// of it than a verdict does, so an expression whose secret reaches the
// summary's values only that way is ErrNotFoldable.
func FoldSecrets(template, source string) (string, error) {
	tt, err := parser.Parse(template)
	if err != nil {
		return "", fmt.Errorf("the expression with its secrets left out does not parse: %w", ErrNotFoldable)
	}
	st, err := parser.Parse(source)
	if err != nil {
		return "", err
	}
	tslots, snodes := postOrder(&tt.Node), postOrderNodes(st.Node)
	if len(tslots) != len(snodes) {
		// A value that is more than one token (-5, 1 + 2): where it
		// stands cannot be told apart from the rest.
		return "", fmt.Errorf("a secret's value is more than one word of the expression: %w", ErrNotFoldable)
	}
	for i, slot := range tslots {
		if !sameShape(*slot, snodes[i]) {
			return "", fmt.Errorf("a secret's value is more than one word of the expression: %w", ErrNotFoldable)
		}
	}
	for i, slot := range tslots {
		n := *slot
		// A secret's value may be a name itself (requests): the part
		// then reads the summary where the secret stands.
		if isLeaf(n) || !readsSecret(n) || readsSummary(n) || readsSummary(snodes[i]) {
			continue
		}
		p, err := expr.Compile(snodes[i].String(), SummaryOptions()...)
		if err != nil {
			continue
		}
		out, err := expr.Run(p, Summary{})
		if b, ok := out.(bool); ok && err == nil {
			*slot = &ast.BoolNode{Value: b}
		}
	}
	if readsSecret(tt.Node) {
		return "", ErrNotFoldable
	}
	folded := tt.Node.String()
	if _, err := expr.Compile(folded, append(SummaryOptions(), expr.AsBool())...); err != nil {
		return "", fmt.Errorf("the expression with its secrets' parts evaluated does not compile (%v): %w", err, ErrNotFoldable)
	}
	return folded, nil
}

type collector struct{ slots []*ast.Node }

func (c *collector) Visit(n *ast.Node) { c.slots = append(c.slots, n) }

// postOrder lists the slots of the tree's nodes, children first.
func postOrder(root *ast.Node) []*ast.Node {
	c := &collector{}
	ast.Walk(root, c)
	return c.slots
}

// postOrderNodes is postOrder's nodes.
func postOrderNodes(n ast.Node) []ast.Node {
	var out []ast.Node
	for _, s := range postOrder(&n) {
		out = append(out, *s)
	}
	return out
}

// sameShape reports whether template node t stands where source node s
// does: the same kind of node, or a placeholder where a literal stands.
func sameShape(t, s ast.Node) bool {
	if id, ok := t.(*ast.IdentifierNode); ok && strings.Contains(id.Value, secretMark) {
		return isLeaf(s)
	}
	return fmt.Sprintf("%T", t) == fmt.Sprintf("%T", s)
}

func isLeaf(n ast.Node) bool {
	switch n.(type) {
	case *ast.NilNode, *ast.IdentifierNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.StringNode, *ast.BytesNode, *ast.ConstantNode, *ast.PointerNode:
		return true
	}
	return false
}

// readsSecret reports whether a placeholder is in n.
func readsSecret(n ast.Node) bool {
	for _, x := range postOrderNodes(n) {
		switch x := x.(type) {
		case *ast.IdentifierNode:
			if strings.Contains(x.Value, secretMark) {
				return true
			}
		case *ast.StringNode:
			if strings.Contains(x.Value, secretMark) {
				return true
			}
		}
	}
	return false
}

// readsSummary reports whether n reads anything but literals: a name (of
// the summary, a let or a closure's #) other than a function called.
func readsSummary(n ast.Node) bool {
	nodes := postOrderNodes(n)
	callee := map[ast.Node]bool{}
	for _, x := range nodes {
		if c, ok := x.(*ast.CallNode); ok {
			callee[c.Callee] = true
		}
	}
	for _, x := range nodes {
		switch x := x.(type) {
		case *ast.IdentifierNode:
			if !callee[x] && !strings.Contains(x.Value, secretMark) {
				return true
			}
		case *ast.PointerNode, *ast.VariableDeclaratorNode:
			return true
		}
	}
	return false
}
