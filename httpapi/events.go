package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cairnhq/cairn/interpreter"
)

// statusEvent is the data of one `status` Server-Sent Event.
type statusEvent struct {
	InstanceID      string          `json:"instanceId"`
	RuntimeStatus   string          `json:"runtimeStatus"`
	CustomStatus    json.RawMessage `json:"customStatus"`
	Output          json.RawMessage `json:"output"`
	LastUpdatedTime string          `json:"lastUpdatedTime"`
	Revision        int64           `json:"revision"`
}

// GET /v1/instances/{id}/events
//
// A Server-Sent Events stream: first the current status, then every change
// of runtime or custom status as the store publishes it, in commit order;
// it ends after the instance finishes. Each event is `event: status`, with
// `id:` the instance revision.
func (s *server) events(c *gin.Context) {
	id, err := instanceID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	// Subscribe first, then read: a change committed in between arrives
	// on the channel and is recognised by its revision.
	changes, stop, err := s.be.WatchStatus(ctx, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer stop()
	st, err := s.be.FetchStatus(ctx, id)
	if err != nil {
		s.fail(c, notFoundInstance(err, id))
		return
	}

	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	c.Status(http.StatusOK)

	last := st.Revision
	send := func(e statusEvent) {
		b, _ := marshal(e)
		fmt.Fprintf(c.Writer, "id: %d\nevent: status\ndata: %s\n\n", e.Revision, b)
		c.Writer.Flush()
	}
	send(eventOf(st))
	if st.Status.Terminal() {
		return
	}
	keepAlive := time.NewTicker(s.keepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keepAlive.C:
			fmt.Fprint(c.Writer, ": keep-alive\n\n")
			c.Writer.Flush()
		case ch, ok := <-changes:
			if !ok {
				// The subscription ended (store connection lost): say
				// where the instance stands now, and let the client
				// reconnect if it still runs.
				if st, err := s.be.FetchStatus(ctx, id); err == nil && st.Revision > last {
					send(eventOf(st))
				}
				return
			}
			if ch.Revision <= last {
				continue
			}
			last = ch.Revision
			send(statusEvent{
				InstanceID: string(id), RuntimeStatus: string(ch.Status), CustomStatus: ch.CustomStatus,
				Output: ch.Output, LastUpdatedTime: fmtTime(ch.Time, dfTime), Revision: ch.Revision,
			})
			if ch.Status.Terminal() {
				return
			}
		}
	}
}

func eventOf(st *interpreter.InstanceStatus) statusEvent {
	return statusEvent{
		InstanceID: string(st.ID), RuntimeStatus: string(st.Status), CustomStatus: st.CustomStatus,
		Output: st.Output, LastUpdatedTime: fmtTime(st.LastUpdatedTime, dfTime), Revision: st.Revision,
	}
}
