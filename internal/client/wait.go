package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Polling bounds for servers without the status stream.
const (
	defaultPoll = time.Second
	minPoll     = 200 * time.Millisecond
	maxPoll     = time.Minute
	// outage is how long Wait keeps retrying a server that answered
	// before and is now unreachable.
	outage = time.Minute
)

// maxEvent bounds one Server-Sent Event (a status change carries the output).
const maxEvent = 4 << 20

// Terminal reports whether a runtime status name means the instance is done.
func Terminal(runtimeStatus string) bool {
	switch runtimeStatus {
	case "Completed", "Failed", "Terminated", "Canceled":
		return true
	}
	return false
}

// statusDoc is the part of a status document or status event Wait reads.
type statusDoc struct {
	RuntimeStatus string          `json:"runtimeStatus"`
	CustomStatus  json.RawMessage `json:"customStatus"` // nil when absent
	Revision      *int64          `json:"revision"`     // status events only
}

// changes reports each custom status once, in order, skipping repeats.
type changes struct {
	last string
	fn   func(json.RawMessage)
}

func (c *changes) see(v json.RawMessage) {
	if v == nil || c.fn == nil {
		return
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return
	}
	if b.String() == c.last {
		return
	}
	c.last = b.String()
	c.fn(json.RawMessage(c.last))
}

// Wait follows an instance until it is Completed, Failed or Terminated and
// returns its final status document. onCustomStatus, when not nil, receives
// each custom status as it changes (compact JSON; a null status before the
// first set is not reported). It listens to the server's status stream
// (GET /v1/instances/{id}/events) and falls back to polling GET status,
// honoring Retry-After, when the stream is unavailable or breaks.
func (c *Client) Wait(ctx context.Context, id string, onCustomStatus func(json.RawMessage)) (json.RawMessage, error) {
	ch := &changes{last: "null", fn: onCustomStatus}
	final, done, answered, err := c.waitStream(ctx, id, ch)
	if done || err != nil {
		return final, err
	}
	return c.waitPoll(ctx, id, ch, answered)
}

// waitStream follows the status stream. done=false with a nil error means
// the stream was not available or broke: the caller polls instead;
// answered says whether the stream had started.
func (c *Client) waitStream(ctx context.Context, id string, ch *changes) (final json.RawMessage, done, answered bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/instances/"+url.PathEscape(id)+"/events", nil, nil)
	if err != nil {
		return nil, false, false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, false, false, ctx.Err()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return nil, false, false, nil
	}

	// The stream starts with the current status, then every change in
	// commit order; the revision drops anything older than what was seen.
	var terminal bool
	var rev int64 = -1
	_ = readEvents(resp.Body, func(data string) bool {
		var d statusDoc
		if json.Unmarshal([]byte(data), &d) != nil || d.RuntimeStatus == "" {
			return false // an event Wait does not know
		}
		if d.Revision != nil {
			if *d.Revision <= rev {
				return false
			}
			rev = *d.Revision
		}
		ch.see(d.CustomStatus)
		terminal = Terminal(d.RuntimeStatus)
		return terminal
	})
	if !terminal {
		return nil, false, true, ctx.Err()
	}
	// The event said it ended; the status document is the answer.
	final, done, _, err = c.pollOnce(ctx, id, ch)
	if err != nil && transient(err) && ctx.Err() == nil {
		err = nil // the poll loop retries
	}
	return final, done, true, err
}

// waitPoll polls GET status until the instance is done. Once the server
// has answered, losing it (restart, rolling deploy) is retried for up to
// outage before Wait gives up.
func (c *Client) waitPoll(ctx context.Context, id string, ch *changes, answered bool) (json.RawMessage, error) {
	var downSince time.Time
	for {
		final, done, delay, err := c.pollOnce(ctx, id, ch)
		switch {
		case err == nil:
			answered, downSince = true, time.Time{}
			if done {
				return final, nil
			}
		case answered && transient(err) && ctx.Err() == nil:
			if downSince.IsZero() {
				downSince = time.Now()
			} else if time.Since(downSince) > outage {
				return nil, err
			}
			delay = defaultPoll
		default:
			return nil, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// transient reports whether err may pass when the server is back.
func transient(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode == http.StatusBadGateway || ae.StatusCode == http.StatusServiceUnavailable || ae.StatusCode == http.StatusGatewayTimeout
	}
	return errors.Is(err, ErrUnreachable)
}

// pollOnce reads the status once: done when the instance has finished,
// else the delay the server asks for before the next poll.
func (c *Client) pollOnce(ctx context.Context, id string, ch *changes) (body json.RawMessage, done bool, delay time.Duration, err error) {
	body, h, err := c.do(ctx, http.MethodGet, instancePath(id), nil, nil, http.StatusOK, http.StatusAccepted)
	if err != nil {
		return nil, false, 0, err
	}
	var d statusDoc
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, false, 0, fmt.Errorf("status of %s: the server answered something other than JSON: %w", id, err)
	}
	ch.see(d.CustomStatus)
	return body, Terminal(d.RuntimeStatus), retryAfter(h.Get("Retry-After"), time.Now()), nil
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), bounded
// to [minPoll, maxPoll]; absent or unreadable gives defaultPoll.
func retryAfter(v string, now time.Time) time.Duration {
	d := defaultPoll
	if v = strings.TrimSpace(v); v != "" {
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			d = time.Duration(n * float64(time.Second))
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	}
	return min(max(d, minPoll), maxPoll)
}

// readEvents reads Server-Sent Events and calls fn with each event's data
// until fn returns true or the stream ends.
func readEvents(r io.Reader, fn func(data string) (stop bool)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEvent)
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if len(data) > 0 && fn(strings.Join(data, "\n")) {
				return nil
			}
			data = data[:0]
			continue
		}
		field, val, _ := strings.Cut(line, ":")
		if field == "data" {
			data = append(data, strings.TrimPrefix(val, " "))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}
