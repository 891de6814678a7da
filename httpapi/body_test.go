package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gin-gonic/gin"
)

// oldReadBody is readBody as it was before it read a sized body into one
// buffer: TestReadBodyIsReadAll holds the two to the same answers.
func (s *server) oldReadBody(c *gin.Context) ([]byte, error) {
	if c.Request.ContentLength > s.maxBody {
		return nil, s.bodyError(&http.MaxBytesError{Limit: s.maxBody})
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.maxBody))
	if err != nil {
		return nil, s.bodyError(err)
	}
	return b, nil
}

func TestReadBodyIsReadAll(t *testing.T) {
	const limit = 100
	s := &server{maxBody: limit}
	bodies := []string{"", "x", `"user1"`, "true", strings.Repeat("y", limit-1), strings.Repeat("z", limit), strings.Repeat("w", limit+1), strings.Repeat("v", 3*limit)}
	readers := map[string]func(string) io.Reader{
		"plain":    func(b string) io.Reader { return strings.NewReader(b) },
		"one-byte": func(b string) io.Reader { return iotest.OneByteReader(strings.NewReader(b)) },
		"data-eof": func(b string) io.Reader { return iotest.DataErrReader(strings.NewReader(b)) },
		"half":     func(b string) io.Reader { return iotest.HalfReader(strings.NewReader(b)) },
		"broken": func(b string) io.Reader {
			return io.MultiReader(strings.NewReader(b), iotest.ErrReader(errors.New("connection reset")))
		},
	}
	for _, body := range bodies {
		for _, delta := range []int64{0, -1, 1, -5, 7, limit} {
			for _, cl := range []int64{int64(len(body)) + delta, -1} {
				if delta != 0 && cl == -1 {
					continue
				}
				for rname, mk := range readers {
					answer := func(read func(*server, *gin.Context) ([]byte, error)) ([]byte, int, string) {
						c, _ := gin.CreateTestContext(httptest.NewRecorder())
						c.Request = httptest.NewRequest("POST", "/", nil)
						c.Request.Body, c.Request.ContentLength = io.NopCloser(mk(body)), cl
						b, err := read(s, c)
						if err != nil {
							code, _ := statusOf(err)
							return nil, code, err.Error()
						}
						return b, 0, ""
					}
					gotB, gotCode, gotErr := answer((*server).readBody)
					wantB, wantCode, wantErr := answer((*server).oldReadBody)
					if !bytes.Equal(gotB, wantB) || gotCode != wantCode || gotErr != wantErr {
						t.Errorf("body of %d bytes, Content-Length %d, %s reader: got %q %d %q, want %q %d %q",
							len(body), cl, rname, gotB, gotCode, gotErr, wantB, wantCode, wantErr)
					}
				}
			}
		}
	}
}
