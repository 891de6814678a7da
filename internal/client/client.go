// Package client calls a cairn server's HTTP API on behalf of the cairn command.
//
// It speaks the Durable-Functions-compatible instance API under
// /runtime/webhooks/durabletask and cairn's status stream under /v1. Bodies
// are returned as raw JSON; the command decides how to print them.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// BasePath is the prefix of the Durable-Functions-compatible API.
const BasePath = "/runtime/webhooks/durabletask"

// KeyHeader carries the API key, as Durable Functions clients send it.
const KeyHeader = "x-functions-key"

// requestTimeout bounds one ordinary (non-streaming) call.
const requestTimeout = 30 * time.Second

// Client calls one cairn server.
type Client struct {
	// Server is the base URL, e.g. http://127.0.0.1:8080.
	Server string
	// Key is the API key; empty sends none.
	Key string
	// HTTP is the transport; nil uses a client without an overall timeout
	// (streams are long) — every ordinary call has its own deadline.
	HTTP *http.Client
}

// APIError is a non-success answer from the server.
type APIError struct {
	StatusCode int
	Code       string // the body's "error", when JSON
	Message    string // the body's "message", or the raw body
}

func (e *APIError) Error() string {
	text := http.StatusText(e.StatusCode)
	switch {
	case e.Message != "" && e.Code != "":
		return fmt.Sprintf("%d %s: %s: %s", e.StatusCode, text, e.Code, e.Message)
	case e.Message != "":
		return fmt.Sprintf("%d %s: %s", e.StatusCode, text, e.Message)
	case e.Code != "":
		return fmt.Sprintf("%d %s: %s", e.StatusCode, text, e.Code)
	}
	return fmt.Sprintf("%d %s", e.StatusCode, text)
}

// ErrUnreachable wraps a failure to connect to the server at all.
var ErrUnreachable = errors.New("cannot reach the cairn server")

// Start starts an instance of the workflow name; id may be empty to let the
// server choose, input nil for none. It returns the check-status payload.
func (c *Client) Start(ctx context.Context, name, id string, input []byte) (json.RawMessage, error) {
	p := BasePath + "/orchestrators/" + url.PathEscape(name)
	if id != "" {
		p += "/" + url.PathEscape(id)
	}
	body, _, err := c.do(ctx, http.MethodPost, p, nil, input, http.StatusAccepted, http.StatusOK)
	return body, err
}

// Status returns an instance's status document (GET /instances/{id}).
func (c *Client) Status(ctx context.Context, id string, history bool) (json.RawMessage, error) {
	q := url.Values{}
	if history {
		q.Set("showHistory", "true")
		q.Set("showHistoryOutput", "true")
	}
	body, _, err := c.do(ctx, http.MethodGet, instancePath(id), q, nil, http.StatusOK, http.StatusAccepted)
	return body, err
}

// Raise sends the event name with data (nil = null) to an instance.
func (c *Client) Raise(ctx context.Context, id, event string, data []byte) error {
	if data == nil {
		data = []byte("null")
	}
	_, _, err := c.do(ctx, http.MethodPost, instancePath(id)+"/raiseEvent/"+url.PathEscape(event), nil, data, http.StatusAccepted, http.StatusOK)
	return err
}

// Terminate asks an instance to stop, with an optional reason.
func (c *Client) Terminate(ctx context.Context, id, reason string) error {
	q := url.Values{}
	if reason != "" {
		q.Set("reason", reason)
	}
	_, _, err := c.do(ctx, http.MethodPost, instancePath(id)+"/terminate", q, nil, http.StatusAccepted, http.StatusOK)
	return err
}

// ListQuery filters List.
type ListQuery struct {
	Statuses []string // runtime status names; empty = all
	Prefix   string   // instance id prefix
	Workflow string   // exact workflow name; "" = all
	Limit    int      // at most this many instances; 0 = all
}

// List returns the instances matching q as one JSON array, following the
// x-ms-continuation-token pages.
func (c *Client) List(ctx context.Context, q ListQuery) (json.RawMessage, error) {
	all := []json.RawMessage{}
	token := ""
	for {
		v := url.Values{}
		if len(q.Statuses) > 0 {
			v.Set("runtimeStatus", strings.Join(q.Statuses, ","))
		}
		if q.Prefix != "" {
			v.Set("instanceIdPrefix", q.Prefix)
		}
		if q.Workflow != "" {
			v.Set("workflow", q.Workflow)
		}
		if q.Limit > 0 {
			v.Set("top", fmt.Sprint(q.Limit-len(all)))
		}
		body, h, err := c.doWith(ctx, http.MethodGet, BasePath+"/instances", v, nil,
			map[string]string{"x-ms-continuation-token": token}, http.StatusOK)
		if err != nil {
			return nil, err
		}
		var page []json.RawMessage
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("list: the server answered something other than a JSON array: %w", err)
		}
		all = append(all, page...)
		token = h.Get("x-ms-continuation-token")
		if token == "" || (q.Limit > 0 && len(all) >= q.Limit) {
			break
		}
	}
	if q.Limit > 0 && len(all) > q.Limit {
		all = all[:q.Limit]
	}
	return json.Marshal(all)
}

func instancePath(id string) string { return BasePath + "/instances/" + url.PathEscape(id) }

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body []byte) (*http.Request, error) {
	u := strings.TrimRight(c.Server, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Key != "" {
		req.Header.Set(KeyHeader, c.Key)
	}
	return req, nil
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, ok ...int) (json.RawMessage, http.Header, error) {
	return c.doWith(ctx, method, path, q, body, nil, ok...)
}

// doWith makes one call and returns its body when the status is one of ok.
func (c *Client) doWith(ctx context.Context, method, path string, q url.Values, body []byte, headers map[string]string, ok ...int) (json.RawMessage, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range headers {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: reading the answer: %w", method, req.URL.Path, err)
	}
	for _, code := range ok {
		if resp.StatusCode == code {
			return b, resp.Header, nil
		}
	}
	return nil, resp.Header, apiError(resp.StatusCode, b)
}

func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.httpClient().Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, ctxErr)
		}
		return nil, fmt.Errorf("%w at %s: %v", ErrUnreachable, c.Server, err)
	}
	return resp, nil
}

func apiError(code int, body []byte) error {
	e := &APIError{StatusCode: code}
	var j struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &j) == nil && (j.Error != "" || j.Message != "") {
		e.Code, e.Message = j.Error, j.Message
	} else {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 500 {
			e.Message = e.Message[:500] + "…"
		}
	}
	return e
}
