package main

// A lean HTTP/1.1 client for httpflow, in the manner of wrk: keep-alive
// TCP connections, each request written by hand into a buffer the
// connection keeps, and the response parsed in place from the
// connection's bufio.Reader. net/http's client costs the bench about as
// much CPU per call as cairn serve spends answering it, on the same cores,
// so it capped the throughput being measured; this one does only what the
// flow needs: Host, Content-Type and Content-Length out, the status line,
// Content-Length, chunked or until-close bodies and Connection back.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// rawMaxBody bounds a response body read whole (a status is at most a few
// tens of kB); a larger one is an error, not an allocation without end.
const rawMaxBody = 16 << 20

// rawClient is a pool of keep-alive connections to one http:// origin.
// A goroutine takes a connection for a whole instance (get … put), so a
// response body stays valid until its connection's next request.
type rawClient struct {
	addr    string // host:port to dial
	host    string // the Host header
	timeout time.Duration
	dialer  net.Dialer
	retries atomic.Int64 // requests sent again on a fresh connection

	mu   sync.Mutex
	idle []*rawConn
}

// rawConn is one connection and the buffers it reuses from request to
// request. c is nil until dialled and after any error or close, so the
// next request dials afresh.
type rawConn struct {
	c      net.Conn
	br     *bufio.Reader
	wbuf   []byte // the request being written
	body   []byte // the last body read whole
	line   []byte // an event-stream line longer than br's buffer
	lines  *bufio.Reader
	bodyR  rawBody
	reused bool // a response came back on c: it is a kept-alive connection
	// Scratch for the caller (request bodies), kept with the connection.
	scratch []byte
}

func newRawClient(base string, timeout time.Duration) (*rawClient, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("raw HTTP client: %q is not an http://host:port origin", base)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &rawClient{addr: addr, host: u.Host, timeout: timeout}, nil
}

// get returns an idle connection, or a new one dialled at its first request.
func (cl *rawClient) get() *rawConn {
	cl.mu.Lock()
	if n := len(cl.idle); n > 0 {
		c := cl.idle[n-1]
		cl.idle = cl.idle[:n-1]
		cl.mu.Unlock()
		return c
	}
	cl.mu.Unlock()
	return &rawConn{}
}

// put gives c back to the pool (closed ones too: their buffers are reused).
func (cl *rawClient) put(c *rawConn) {
	cl.mu.Lock()
	cl.idle = append(cl.idle, c)
	cl.mu.Unlock()
}

// closeIdle closes every pooled connection.
func (cl *rawClient) closeIdle() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, c := range cl.idle {
		c.close()
	}
	cl.idle = nil
}

func (c *rawConn) close() {
	if c.c != nil {
		_ = c.c.Close()
		c.c = nil
	}
	c.reused = false
}

// rawHead is what the client keeps of a response's head.
type rawHead struct {
	code    int
	chunked bool
	length  int64 // Content-Length; -1 when absent
	close   bool  // the server closes the connection after this response
	noBody  bool  // 204, 304, or the answer to HEAD
}

// do sends method a+b+c (the path in pieces, so callers need not join
// them) with body (nil: none) and reads the response whole. The body it
// returns is valid until the connection's next request.
func (cl *rawClient) do(ctx context.Context, c *rawConn, method, a, b, p string, body []byte) (int, []byte, error) {
	h, err := cl.roundTrip(ctx, c, method, a, b, p, "", body)
	if err != nil {
		return 0, nil, err
	}
	out, err := c.readBody(h)
	if err != nil {
		c.close()
		return 0, nil, err
	}
	if h.close {
		c.close()
	}
	return h.code, out, nil
}

// roundTrip writes the request and reads the response's head. A
// kept-alive connection that fails before the first byte of the response
// is one the server closed between requests (idle timeout, shutdown): Go's
// server closes a connection only between requests or after answering, so
// it did not read this request, and the request goes again, once, on a
// fresh connection. Any other failure is an error.
func (cl *rawClient) roundTrip(ctx context.Context, c *rawConn, method, a, b, p, accept string, body []byte) (rawHead, error) {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return rawHead{}, err
		}
		if c.c == nil {
			if err := cl.dial(ctx, c); err != nil {
				return rawHead{}, err
			}
		}
		reused := c.reused
		h, got, err := cl.exchange(c, method, a, b, p, accept, body)
		if err == nil {
			c.reused = true
			return h, nil
		}
		c.close()
		if reused && !got && attempt == 0 && stale(err) && ctx.Err() == nil {
			cl.retries.Add(1)
			continue
		}
		return rawHead{}, fmt.Errorf("%s %s%s%s: %w", method, a, b, p, err)
	}
}

// stale reports whether err is how a connection the peer closed fails:
// end of stream, reset, or a broken pipe (not a timeout).
func stale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (cl *rawClient) dial(ctx context.Context, c *rawConn) error {
	nc, err := cl.dialer.DialContext(ctx, "tcp", cl.addr)
	if err != nil {
		return err
	}
	c.c = nc
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 8<<10)
	} else {
		c.br.Reset(nc)
	}
	c.reused = false
	return nil
}

// exchange writes one request on c and reads the response's head; got
// says whether any byte of the response arrived.
func (cl *rawClient) exchange(c *rawConn, method, a, b, p, accept string, body []byte) (h rawHead, got bool, err error) {
	if err := c.c.SetDeadline(time.Now().Add(cl.timeout)); err != nil {
		return h, false, err
	}
	w := append(c.wbuf[:0], method...)
	w = append(w, ' ')
	w = append(w, a...)
	w = append(w, b...)
	w = append(w, p...)
	w = append(w, " HTTP/1.1\r\nHost: "...)
	w = append(w, cl.host...)
	w = append(w, "\r\n"...)
	if accept != "" {
		w = append(w, "Accept: "...)
		w = append(w, accept...)
		w = append(w, "\r\n"...)
	}
	if body != nil {
		w = append(w, "Content-Type: application/json\r\nContent-Length: "...)
		w = strconv.AppendInt(w, int64(len(body)), 10)
		w = append(w, "\r\n"...)
	}
	w = append(w, "\r\n"...)
	w = append(w, body...)
	c.wbuf = w
	if _, err := c.c.Write(w); err != nil {
		return h, false, err
	}
	if _, err := c.br.Peek(1); err != nil {
		return h, false, err
	}
	h, err = readHead(c.br, method)
	return h, true, err
}

// readHead parses a response's status line and headers from br, skipping
// interim (1xx) responses.
func readHead(br *bufio.Reader, method string) (rawHead, error) {
	for {
		h, err := readOneHead(br, method)
		if err != nil {
			return h, err
		}
		if h.code >= 200 {
			return h, nil
		}
		if h.code == 101 {
			return h, errors.New("unexpected 101 Switching Protocols")
		}
	}
}

func readOneHead(br *bufio.Reader, method string) (rawHead, error) {
	h := rawHead{length: -1}
	line, err := headLine(br)
	if err != nil {
		return h, err
	}
	// HTTP/1.1 200 OK — the reason phrase may be empty or absent.
	var http10 bool
	switch {
	case bytes.HasPrefix(line, []byte("HTTP/1.1 ")):
	case bytes.HasPrefix(line, []byte("HTTP/1.0 ")):
		http10 = true
	default:
		return h, fmt.Errorf("malformed status line %q", line)
	}
	code := line[len("HTTP/1.1 "):]
	if len(code) < 3 || (len(code) > 3 && code[3] != ' ') {
		return h, fmt.Errorf("malformed status line %q", line)
	}
	for _, d := range code[:3] {
		if d < '0' || d > '9' {
			return h, fmt.Errorf("malformed status line %q", line)
		}
		h.code = h.code*10 + int(d-'0')
	}
	if h.code < 100 {
		return h, fmt.Errorf("malformed status line %q", line)
	}
	keepAlive := false // HTTP/1.0's opt-in
	for {
		line, err := headLine(br)
		if err != nil {
			return h, err
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return h, fmt.Errorf("folded header line %q", line)
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return h, fmt.Errorf("malformed header line %q", line)
		}
		name, v := line[:i], bytes.Trim(line[i+1:], " \t")
		switch {
		case asciiEqualFold(name, "Content-Length"):
			n, ok := parseDec(v)
			if !ok || (h.length >= 0 && n != h.length) {
				return h, fmt.Errorf("bad Content-Length %q", v)
			}
			h.length = n
		case asciiEqualFold(name, "Transfer-Encoding"):
			if !asciiEqualFold(v, "chunked") || h.chunked {
				return h, fmt.Errorf("unsupported Transfer-Encoding %q", v)
			}
			h.chunked = true
		case asciiEqualFold(name, "Connection"):
			for tok := range bytes.SplitSeq(v, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				h.close = h.close || asciiEqualFold(tok, "close")
				keepAlive = keepAlive || asciiEqualFold(tok, "keep-alive")
			}
		}
	}
	if http10 && !keepAlive {
		h.close = true
	}
	if h.chunked && h.length >= 0 {
		return h, errors.New("both Content-Length and chunked Transfer-Encoding")
	}
	h.noBody = method == "HEAD" || h.code == 204 || h.code == 304 || h.code < 200
	if !h.noBody && !h.chunked && h.length < 0 {
		h.close = true // the body runs until the server closes
	}
	return h, nil
}

// headLine reads one CRLF- (or LF-) terminated line of a head, without
// its terminator; a line longer than br's buffer is an error.
func headLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("response head line too long")
		}
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF // the head had begun
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// parseDec parses a non-negative decimal without allocating.
func parseDec(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

// rawBody reads a response body off the connection: Content-Length,
// chunked, or until the server closes.
type rawBody struct {
	br       *bufio.Reader
	chunked  bool
	rem      int64 // bytes left: of the body, or of the current chunk
	untilEOF bool
	inChunk  bool // a chunk's data was read and its CRLF is still due
	done     bool
}

func (c *rawConn) openBody(h rawHead) *rawBody {
	c.bodyR = rawBody{br: c.br, chunked: h.chunked, rem: max(h.length, 0), untilEOF: !h.noBody && !h.chunked && h.length < 0}
	c.bodyR.done = h.noBody || (!h.chunked && !c.bodyR.untilEOF && h.length == 0)
	return &c.bodyR
}

func (r *rawBody) Read(p []byte) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.untilEOF {
		n, err := r.br.Read(p)
		if errors.Is(err, io.EOF) {
			r.done = true
		}
		return n, err
	}
	if r.chunked && r.rem == 0 {
		if err := r.nextChunk(); err != nil {
			return 0, err
		}
		if r.done {
			return 0, io.EOF
		}
	}
	n, err := r.br.Read(p[:min(int64(len(p)), r.rem)])
	r.rem -= int64(n)
	if errors.Is(err, io.EOF) {
		return n, io.ErrUnexpectedEOF // a short body: the connection closed early
	}
	if err != nil {
		return n, err
	}
	if r.rem == 0 && !r.chunked {
		r.done = true
	}
	return n, nil
}

// nextChunk ends the current chunk (its CRLF) and reads the next size
// line; the last (0) chunk's trailers are read and dropped.
func (r *rawBody) nextChunk() error {
	if r.inChunk {
		line, err := headLine(r.br)
		if err != nil {
			return err
		}
		if len(line) != 0 {
			return fmt.Errorf("chunk not followed by CRLF: %q", line)
		}
		r.inChunk = false
	}
	line, err := headLine(r.br)
	if err != nil {
		return err
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i] // chunk extensions
	}
	line = bytes.Trim(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return fmt.Errorf("bad chunk size %q", line)
	}
	var n int64
	for _, d := range line {
		switch {
		case '0' <= d && d <= '9':
			d -= '0'
		case 'a' <= d && d <= 'f':
			d -= 'a' - 10
		case 'A' <= d && d <= 'F':
			d -= 'A' - 10
		default:
			return fmt.Errorf("bad chunk size %q", line)
		}
		n = n<<4 | int64(d)
	}
	if n > 0 {
		r.rem, r.inChunk = n, true
		return nil
	}
	for { // trailers, up to the empty line
		line, err := headLine(r.br)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			r.done = true
			return nil
		}
	}
}

// readBody reads the body of h whole into the connection's buffer.
func (c *rawConn) readBody(h rawHead) ([]byte, error) {
	r := c.openBody(h)
	b := c.body[:0]
	if h.length >= 0 && !h.chunked {
		if h.length > rawMaxBody {
			return nil, fmt.Errorf("response body of %d bytes", h.length)
		}
		b = growTo(b, int(h.length))
	}
	for !r.done {
		if len(b) == cap(b) {
			if len(b) >= rawMaxBody {
				return nil, errors.New("response body over 16 MB")
			}
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			c.body = b[:0]
			return nil, err
		}
	}
	c.body = b
	return b, nil
}

func growTo(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, 0, n)
	}
	return b
}

// openStream sends a GET for an event stream and returns its head; the
// caller reads lines with streamLine, then finishes with endStream.
func (cl *rawClient) openStream(ctx context.Context, c *rawConn, a, b, p string) (rawHead, error) {
	h, err := cl.roundTrip(ctx, c, "GET", a, b, p, "text/event-stream", nil)
	if err != nil {
		return h, err
	}
	r := c.openBody(h)
	if c.lines == nil {
		c.lines = bufio.NewReaderSize(r, 4<<10)
	} else {
		c.lines.Reset(r)
	}
	return h, nil
}

// streamLine returns the stream's next line without its terminator
// (valid until the next call), or io.EOF at the end of the body.
func (c *rawConn) streamLine() ([]byte, error) {
	line, err := c.lines.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		c.line = append(c.line[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(c.line) > rawMaxBody {
				return nil, errors.New("event-stream line over 16 MB")
			}
			line, err = c.lines.ReadSlice('\n')
			c.line = append(c.line, line...)
		}
		line = c.line
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF // a line cut off by the end
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// streamAll reads the rest of a stream's body, at most 64 kB: the text of
// an error response.
func (c *rawConn) streamAll() ([]byte, error) {
	return io.ReadAll(io.LimitReader(c.lines, 64<<10))
}

// endStream drains the stream (the server ends it) so the connection can
// carry the next request; after an error, or when the drain fails, the
// connection is closed instead.
func (c *rawConn) endStream(h rawHead, err error) {
	if err == nil {
		_, err = io.Copy(io.Discard, c.lines)
	}
	if err != nil || h.close {
		c.close()
	}
}
