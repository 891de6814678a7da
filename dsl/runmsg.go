package dsl

import (
	"fmt"
	"regexp"
	"strings"
)

// expr's run-time type errors speak Go ("invalid operation: string + int",
// "bool(float64)"); explain translates the common ones into the
// language's types and says how to fix the expression. The Go text stays
// in parentheses, so a message can still be searched for.

var (
	reBinary  = regexp.MustCompile(`^invalid operation: (\S+) (\S+) (\S+)$`)
	reConvert = regexp.MustCompile(`^invalid operation: (\w+)\(([^)]*)\)$`)
	reFetch   = regexp.MustCompile(`^cannot fetch (.+) from (\S+)$`)
	reIface   = regexp.MustCompile(`^interface conversion: interface \{\} is (\S+), not (\S+)$`)
)

// goTypeName names a Go type of a JSON value as the language does.
func goTypeName(t string) string {
	switch {
	case t == "int" || t == "float64" || t == "int64":
		return "a number"
	case t == "string":
		return "a string"
	case t == "bool":
		return "a boolean"
	case t == "<nil>" || t == "nil":
		return "null"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "an object"
	case t == "time.Time":
		return "a time"
	case t == "time.Duration":
		return "a duration"
	}
	return t
}

func explain(err error) error {
	msg := err.Error()
	if m := reBinary.FindStringSubmatch(msg); m != nil {
		l, op, r := goTypeName(m[1]), m[2], goTypeName(m[3])
		fix := ""
		switch {
		case l == "null" || r == "null":
			fix = "; a value is null here (a variable not set on this path, or a property the value lacks): give a default with ??"
		case op == "+" && (l == "a string" || r == "a string"):
			fix = "; to join text, convert with string(x), or write each part as ${ } inside the text"
		case l == "a boolean" || r == "a boolean":
			fix = "; a boolean is not a number (use x ? 1 : 0)"
		case l == "a string" || r == "a string":
			fix = "; convert text to a number with float(x) or int(x)"
		}
		return fmt.Errorf("'%s' does not take %s and %s%s (%s)", op, l, r, fix, msg)
	}
	if m := reConvert.FindStringSubmatch(msg); m != nil {
		got := goTypeName(m[2])
		switch m[1] {
		case "bool":
			return fmt.Errorf("the condition yields %s, not a boolean; compare it, as in x > 0 or x != nil (%s)", got, msg)
		case "int":
			return fmt.Errorf("an index must be a number, not %s; to read a property write x.name or x[\"name\"] on an object (%s)", got, msg)
		}
	}
	if m := reFetch.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("cannot read '%s' of %s: only objects have properties and only lists and strings indexes (%s)", m[1], goTypeName(m[2]), msg)
	}
	if m := reIface.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("expected %s here, but the value is %s (%s)", goTypeName(m[2]), goTypeName(m[1]), msg)
	}
	return err
}
