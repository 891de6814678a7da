package httpapi

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestGetQueryIsParseQuery holds getQuery to gin's GetQuery (the first
// value url.ParseQuery reads) on queries with escapes, repeats, empty and
// broken pairs and semicolons.
func TestGetQueryIsParseQuery(t *testing.T) {
	names := []string{"reason", "code", "showInput", "timeout", "a b", "a+b", "x"}
	queries := []string{
		"", "reason", "reason=", "reason=bench", "reason=a+b%20c", "reason=%zz&reason=ok", "reason=%zz",
		"re%61son=esc", "re%zzson=x&reason=y", "reason;x=1&reason=2", "reason=1;2&reason=3", "&&reason=v&",
		"code=k%2Fey&showInput=false", "showInput=true&showInput=false", "a+b=plus", "a%20b=space&a+b=plus2",
		"x=1=2", "=v&x", "x&x=1", "timeout=0.5&pollingInterval=1", "%=1&x=2", "x=%", "x=%4", "x=%41%42",
		"reason=" + strings.Repeat("r", 300),
		strings.Repeat("p=1&", maxScannedParams) + "reason=many",
		strings.Repeat("p=1&", maxScannedParams-2) + "reason=some",
	}
	for _, q := range queries {
		for _, name := range names {
			mk := func() *gin.Context {
				c, _ := gin.CreateTestContext(httptest.NewRecorder())
				c.Request = httptest.NewRequest("GET", "/", nil)
				c.Request.URL.RawQuery = q
				return c
			}
			gotV, gotOK := getQuery(mk(), name)
			wantV, wantOK := mk().GetQuery(name)
			if gotV != wantV || gotOK != wantOK {
				t.Errorf("%q in %q: got %q %v, want %q %v", name, q, gotV, gotOK, wantV, wantOK)
			}
			vs, _ := url.ParseQuery(q)
			if wantOK != vs.Has(name) {
				t.Errorf("%q in %q: gin and url.ParseQuery differ", name, q)
			}
		}
	}
}

func FuzzGetQuery(f *testing.F) {
	for _, q := range []string{"reason=a+b", "x=%zz&x=1", "a;b=1&a=2", "%41=1&A=2"} {
		f.Add(q, "x")
	}
	f.Fuzz(func(t *testing.T, q, name string) {
		mk := func() *gin.Context {
			c, _ := gin.CreateTestContext(httptest.NewRecorder())
			c.Request = httptest.NewRequest("GET", "/", nil)
			c.Request.URL.RawQuery = q
			return c
		}
		gotV, gotOK := getQuery(mk(), name)
		wantV, wantOK := mk().GetQuery(name)
		if gotV != wantV || gotOK != wantOK {
			t.Errorf("%q in %q: got %q %v, want %q %v", name, q, gotV, gotOK, wantV, wantOK)
		}
	})
}
