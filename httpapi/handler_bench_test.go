package httpapi

// BenchmarkHandlerAlone measures the API's own work per call (routing,
// decoding, checking, the answer's JSON and headers) with a store that
// answers at once from memory and the parsed ReserveTicket definition, so
// neither Redis nor its client nor the machine's other load shows in
// ns/op: the yardstick for cuts inside this package, next to
// BenchmarkCalls and BenchmarkGetStatus, which include the store.
//
//	go test -run '^$' -bench HandlerAlone -benchmem ./httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

// nopBackend answers every call the API makes per instance at once.
type nopBackend struct {
	*fakeBackend
	st *interpreter.InstanceStatus
}

func (nopBackend) CreateInstance(context.Context, interpreter.NewInstance) error { return nil }
func (nopBackend) RaiseEvent(context.Context, interpreter.InstanceID, string, json.RawMessage, time.Time) error {
	return nil
}
func (nopBackend) SendControl(context.Context, interpreter.InstanceID, interpreter.Event) error {
	return nil
}
func (b nopBackend) FetchStatus(context.Context, interpreter.InstanceID) (*interpreter.InstanceStatus, error) {
	return b.st, nil
}
func (nopBackend) LatestDefinition(context.Context, string) (string, error) { return "h", nil }

// oneDef is a Catalog of one parsed definition.
type oneDef struct{ def *dsl.Workflow }

func (oneDef) HasEventSchemas() bool { return false }
func (o oneDef) Get(context.Context, string, string) (*dsl.Workflow, error) {
	return o.def, nil
}

// benchWriter keeps only the code, so allocations are the handler's.
type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}
func (w *benchWriter) WriteHeader(code int) { w.code = code }

func BenchmarkHandlerAlone(b *testing.B) {
	src, err := os.ReadFile("../workflows/reserve-ticket.yaml")
	if err != nil {
		b.Fatal(err)
	}
	def, err := dsl.Parse("reserve-ticket.yaml", src)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	st := &interpreter.InstanceStatus{
		ID: "flow-12345", Name: "ReserveTicket", Status: interpreter.StatusRunning, DefHash: def.Hash,
		Input: json.RawMessage(`"user1"`), CustomStatus: json.RawMessage(`{"discount":15,"discountTimeout":60,"bookingUrl":""}`),
		CreatedTime: at, LastUpdatedTime: at, Revision: 2,
		Pending: &interpreter.Pending{Kind: interpreter.WaitEvent, StepID: "steps[2]", Event: "BookingConfirmed", Deadline: &at},
	}
	h := New(Config{Backend: nopBackend{newFake(), st}, Catalog: oneDef{def}})
	for _, c := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"start", "POST", df + "/orchestrators/ReserveTicket/flow-12345", `"user1"`, http.StatusAccepted},
		{"raiseEvent", "POST", df + "/instances/flow-12345/raiseEvent/BookingConfirmed", `true`, http.StatusAccepted},
		{"status", "GET", df + "/instances/flow-12345", "", http.StatusAccepted},
		{"terminate", "POST", df + "/instances/flow-12345/terminate?reason=bench", "", http.StatusAccepted},
	} {
		b.Run(c.name, func(b *testing.B) {
			req, err := http.NewRequest(c.method, "http://localhost:8080"+c.path, nil)
			if err != nil {
				b.Fatal(err)
			}
			req.RequestURI = c.path
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			body := strings.NewReader(c.body)
			w := &benchWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				body.Reset(c.body)
				req.Body, req.ContentLength = io.NopCloser(body), int64(len(c.body))
				clear(w.h)
				w.code = 0
				h.ServeHTTP(w, req)
				if w.code != c.want {
					b.Fatalf("%d, want %d", w.code, c.want)
				}
			}
		})
	}
}
