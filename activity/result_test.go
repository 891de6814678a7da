package activity

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckResultDepthAndNumbers(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, c := range []struct {
		raw string
		ok  bool
	}{
		{deep(MaxResultDepth), true},
		{deep(MaxResultDepth + 1), false},
		{deep(10000), false},
		{`{"a":"` + strings.Repeat("[", 1000) + `"}`, true},
		{`{"n":1e308}`, true},
		{`{"n":1e999999}`, false},
	} {
		_, err := checkResult([]byte(c.raw))
		var ae *Error
		if (err == nil) != c.ok || (err != nil && (!errors.As(err, &ae) || ae.Type != ErrTypeInvalidResult || !ae.NonRetryable)) {
			t.Errorf("checkResult(%.30q…) = %v, want ok=%v", c.raw, err, c.ok)
		}
	}
}
