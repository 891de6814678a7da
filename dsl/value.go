package dsl

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// value builds a Value from any YAML node, recording its expressions.
func (p *parser) value(n *yaml.Node, sc *scope) *Value {
	n = resolve(n)
	v := &Value{Pos: nodePos(n), binding: sc.binding}
	switch n.Kind {
	case yaml.ScalarNode:
		if isString(n) && strings.Contains(n.Value, "${") {
			p.templateValue(v, n, sc)
			return v
		}
		v.kind, v.lit, v.static = valLiteral, p.scalarJSON(n), true
	case yaml.SequenceNode:
		v.kind, v.static = valList, true
		for _, c := range n.Content {
			it := p.value(c, sc)
			v.items = append(v.items, it)
			v.static = v.static && it.static
		}
		if v.static {
			lit := make([]any, len(v.items))
			for i, it := range v.items {
				lit[i] = it.lit
			}
			v.lit = lit
		}
	case yaml.MappingNode:
		v.kind, v.static = valMap, true
		seen := map[string]bool{}
		for _, kv := range pairs(n) {
			if seen[kv[0].Value] {
				continue
			}
			seen[kv[0].Value] = true
			f := p.value(kv[1], sc)
			v.keys = append(v.keys, kv[0].Value)
			v.fields = append(v.fields, f)
			v.static = v.static && f.static
		}
		if v.static {
			lit := make(map[string]any, len(v.keys))
			for i, k := range v.keys {
				lit[k] = v.fields[i].lit
			}
			v.lit = lit
		}
	default:
		v.kind, v.static = valLiteral, true
	}
	return v
}

func (p *parser) templateValue(v *Value, n *yaml.Node, sc *scope) {
	segs, terr := splitTemplate(n.Value)
	if terr != nil {
		p.errorf(p.runePos(n, terr.off), terr.code, "%s", terr.msg)
		v.kind, v.lit, v.static = valLiteral, n.Value, true
		return
	}
	if i := wholeExpr(segs); i >= 0 {
		v.kind = valExpr
		v.expr = p.newExpr(segs[i].text, n, segs[i].off, sc, false)
		return
	}
	hasExpr := false
	v.kind = valInterp
	for _, s := range segs {
		if s.isExpr {
			hasExpr = true
			v.parts = append(v.parts, part{expr: p.newExpr(s.text, n, s.off, sc, false)})
		} else {
			v.parts = append(v.parts, part{text: s.text})
		}
	}
	if !hasExpr { // only $${ escapes
		v.kind, v.static = valLiteral, true
		v.lit = v.parts[0].text
		v.parts = nil
	}
}

// runePos is the source position of rune i of a scalar's value.
func (p *parser) runePos(n *yaml.Node, i int) Pos {
	if all := p.scalarPositions(n); i >= 0 && i < len(all) {
		return all[i]
	}
	return nodePos(n)
}

// condition compiles a `when:` or `if:`: a bare expression (a `${ }`
// around it is tolerated) that must yield a boolean.
func (p *parser) condition(field string, n *yaml.Node, sc *scope) *Condition {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.errorf(nodePos(n), CodeTypeMismatch, "'%s' must be an expression such as x > 1, not %s", field, kindName(n))
		return nil
	}
	src, off := n.Value, 0
	if strings.Contains(src, "${") {
		segs, terr := splitTemplate(src)
		if terr != nil {
			p.errorf(p.runePos(n, terr.off), terr.code, "%s", terr.msg)
			return nil
		}
		i := wholeExpr(segs)
		if i < 0 {
			p.errorf(nodePos(n), CodeExprSyntax, "'%s' is a bare expression; write it without '${ }' around parts of it", field)
			return nil
		}
		src, off = segs[i].text, segs[i].off
	}
	if strings.TrimSpace(src) == "" {
		p.errorf(nodePos(n), CodeExprEmpty, "'%s' holds no expression", field)
		return nil
	}
	c := p.newExpr(src, n, off, sc, true)
	return &Condition{Pos: nodePos(n), Source: src, c: c}
}
