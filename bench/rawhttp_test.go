package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawTestClient returns a raw client for srv and one of its connections.
func rawTestClient(t *testing.T, url string) (*rawClient, *rawConn) {
	t.Helper()
	cl, err := newRawClient(url, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := cl.get()
	t.Cleanup(func() { c.close() })
	return cl, c
}

// countConns counts the connections srv accepted.
func countConns(srv *httptest.Server) *atomic.Int64 {
	var n atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

func TestRawContentLength(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost && (r.Header.Get("Content-Type") != "application/json" || r.ContentLength != int64(len(body))) {
			http.Error(w, "bad request headers", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"method":%q,"path":%q,"host":%q,"body":%q}`, r.Method, r.URL.Path, r.Host, body)
	}))
	conns := countConns(srv)
	srv.Start()
	defer srv.Close()
	cl, c := rawTestClient(t, srv.URL)
	host := strings.TrimPrefix(srv.URL, "http://")
	for i := range 5 {
		code, b, err := cl.do(context.Background(), c, "POST", "/a/", fmt.Sprint(i), "/b", []byte(`"user-1"`))
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`{"method":"POST","path":"/a/%d/b","host":%q,"body":"\"user-1\""}`, i, host)
		if code != http.StatusAccepted || string(b) != want {
			t.Fatalf("got %d %s, want 202 %s", code, b, want)
		}
		code, b, err = cl.do(context.Background(), c, "GET", "/x", "", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		want = fmt.Sprintf(`{"method":"GET","path":"/x","host":%q,"body":""}`, host)
		if code != http.StatusAccepted || string(b) != want {
			t.Fatalf("got %d %s, want 202 %s", code, b, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 10 keep-alive requests, want 1", n)
	}
}

func TestRawChunked(t *testing.T) {
	// Bodies across chunk and buffer boundaries (the reader's buffer is 8 kB).
	big := strings.Repeat("0123456789abcdef", 2000)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		for _, part := range []string{`{"a":`, `"` + big + `"`, `}`} {
			io.WriteString(w, part)
			w.(http.Flusher).Flush() // each Flush ends a chunk
		}
	}))
	conns := countConns(srv)
	srv.Start()
	defer srv.Close()
	cl, c := rawTestClient(t, srv.URL)
	for range 3 {
		code, b, err := cl.do(context.Background(), c, "GET", "/", "", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"a":"` + big + `"}`; code != 200 || string(b) != want {
			t.Fatalf("got %d, %d bytes, want 200, %d bytes", code, len(b), len(want))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 keep-alive requests, want 1", n)
	}
}

func TestRawConnectionClose(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	}))
	conns := countConns(srv)
	srv.Start()
	defer srv.Close()
	cl, c := rawTestClient(t, srv.URL)
	for range 3 {
		code, b, err := cl.do(context.Background(), c, "GET", "/", "", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if code != 200 || string(b) != "bye" {
			t.Fatalf("got %d %q", code, b)
		}
		if c.c != nil {
			t.Fatal("the connection stays open after Connection: close")
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (one per request)", n)
	}
	if n := cl.retries.Load(); n != 0 {
		t.Errorf("%d retries, want 0", n)
	}
}

// A kept-alive connection the server closed while idle is retried once on
// a fresh connection; the request is answered once.
func TestRawServerClosedIdle(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	cl, c := rawTestClient(t, srv.URL)
	for i := range 3 {
		if i > 0 {
			srv.CloseClientConnections()
		}
		code, b, err := cl.do(context.Background(), c, "POST", "/", "", "", []byte("true"))
		if err != nil || code != 200 || string(b) != "ok" {
			t.Fatalf("request %d: %d %q %v", i, code, b, err)
		}
	}
	if n := cl.retries.Load(); n != 2 {
		t.Errorf("%d retries, want 2", n)
	}
	if n := served.Load(); n != 3 {
		t.Errorf("the server answered %d requests, want 3", n)
	}
}

func TestRawNotOK(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such instance", http.StatusNotFound)
	}))
	defer srv.Close()
	cl, c := rawTestClient(t, srv.URL)
	code, b, err := cl.do(context.Background(), c, "GET", "/", "", "", nil)
	if err != nil || code != http.StatusNotFound || string(b) != "no such instance\n" {
		t.Fatalf("got %d %q %v", code, b, err)
	}
}

// cannedServer answers every connection's first request with resp, then
// closes it.
func cannedServer(t *testing.T, resp string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(nc, resp)
			}()
		}
	}()
	return "http://" + l.Addr().String()
}

// A short body, a cut-off chunked body, or a connection closed before the
// response is an error, never a result.
func TestRawShortResponses(t *testing.T) {
	for name, resp := range map[string]string{
		"short Content-Length": "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
		"cut chunk":            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
		"no last chunk":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
		"cut head":             "HTTP/1.1 200 OK\r\nContent-Le",
		"nothing":              "",
		"garbage":              "SMTP ready\r\n\r\n",
		"bad chunk size":       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
		"gzip":                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			cl, c := rawTestClient(t, cannedServer(t, resp))
			code, b, err := cl.do(context.Background(), c, "GET", "/", "", "", nil)
			if err == nil {
				t.Fatalf("got %d %q, want an error", code, b)
			}
			if c.c != nil {
				t.Error("the connection stays open after an error")
			}
		})
	}
}

func TestRawUntilClose(t *testing.T) {
	for name, resp := range map[string]string{
		"no length":   "HTTP/1.1 200 OK\r\n\r\nall of it",
		"HTTP/1.0":    "HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nall of it",
		"interim 100": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 9\r\n\r\nall of it",
		"chunk ext":   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4;x=y\r\nall \r\n5\r\nof it\r\n0\r\nTrailer: z\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			cl, c := rawTestClient(t, cannedServer(t, resp))
			code, b, err := cl.do(context.Background(), c, "GET", "/", "", "", nil)
			if err != nil || code != 200 || string(b) != "all of it" {
				t.Fatalf("got %d %q %v", code, b, err)
			}
			if c.c != nil {
				t.Error("the connection stays open after a response that ends it")
			}
		})
	}
}

func TestRawEventStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "text/event-stream" {
			http.Error(w, "want an event stream", http.StatusNotAcceptable)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range []string{`{"runtimeStatus":"Running"}`, `{"runtimeStatus":"Running","customStatus":"` + strings.Repeat("x", 10000) + `"}`, `{"runtimeStatus":"Completed"}`} {
			fmt.Fprintf(w, "event: status\ndata: %s\n\n", ev)
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	cl, c := rawTestClient(t, srv.URL)
	for range 2 { // the second stream reuses the connection
		h, err := cl.openStream(context.Background(), c, "/v1/instances/", "x", "/events")
		if err != nil || h.code != 200 {
			t.Fatal(h.code, err)
		}
		var got []string
		for {
			line, err := c.streamLine()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
				got = append(got, string(d[:min(len(d), 30)]))
			}
		}
		c.endStream(h, nil)
		want := []string{`{"runtimeStatus":"Running"}`, `{"runtimeStatus":"Running","cu`, `{"runtimeStatus":"Completed"}`}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		if c.c == nil {
			t.Fatal("the connection closed after a whole stream")
		}
	}
}

// Parsing a response allocates nothing once the buffers have grown.
func TestRawParseAllocs(t *testing.T) {
	one := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Thu, 03 Dec 2026 12:00:00 GMT\r\nContent-Length: 28\r\n\r\n{\"runtimeStatus\":\"Running\"}\n" +
		"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
	src := strings.NewReader("")
	c := &rawConn{br: bufio.NewReaderSize(src, 8<<10)}
	var err error
	parse := func() {
		src.Reset(one)
		c.br.Reset(src)
		for range 2 {
			var h rawHead
			if h, err = readHead(c.br, "GET"); err != nil {
				return
			}
			if _, err = c.readBody(h); err != nil {
				return
			}
		}
	}
	parse()
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, parse); n != 0 || err != nil {
		t.Errorf("%v allocations per two responses (err %v), want 0", n, err)
	}
}
