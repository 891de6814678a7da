package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/dsl"
)

func TestTraceParent(t *testing.T) {
	const good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, c := range []struct{ in, want string }{
		{good, good},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
		// A later version may add fields; cairn keeps the ones it knows.
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-next", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"", ""},
		{good + "-extra", ""}, // version 00 has exactly four fields
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", ""},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", ""}, // upper case
		{"00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", ""},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", ""},
	} {
		h := http.Header{}
		if c.in != "" {
			h.Set("Traceparent", c.in)
		}
		if got := traceParent(h); got != c.want {
			t.Errorf("traceParent(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestDeploymentIsLogged: PUT /v1/workflows writes the same line as a
// deployment from files, with source=api.
func TestDeploymentIsLogged(t *testing.T) {
	h := newHarness(t)
	yaml := "name: Hello\nsteps:\n  - return: hi\n"
	if r := h.do("PUT", "/v1/workflows/Hello", []byte(yaml), "Content-Type", "application/yaml"); r.code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", r.code, r.body)
	}
	def, err := dsl.Parse("Hello.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	want := `msg="workflow deployed" name=Hello hash=` + def.Hash[:12] + ` source=api new=true`
	got := h.log.String() // written before the answer was sent
	if strings.Count(got, "workflow deployed") != 1 || !strings.Contains(got, want) {
		t.Errorf("log:\n%s\nwant one line with %s", got, want)
	}
}
