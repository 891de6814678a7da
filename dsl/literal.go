package dsl

// SharedLiteral is Literal without the copy: the value, when it holds no
// expression, as the model holds it, for a caller that only reads it
// (encodes or validates it) and must never change it. The engine sets
// static custom statuses and activity inputs, and copying each on every
// transition only to encode it cost allocations (issue 20).
func (v *Value) SharedLiteral() (any, bool) {
	if v == nil {
		return nil, true
	}
	if !v.static {
		return nil, false
	}
	return v.lit, true
}
