package metrics

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/activity"
	"github.com/cairnhq/cairn/interpreter"
)

// Span attributes. The instance id is an attribute, never part of a span
// name: names stay few (one per workflow or activity), as backends expect.
const (
	AttrInstance   = attribute.Key("cairn.instance.id")
	AttrWorkflow   = attribute.Key("cairn.workflow")
	AttrStep       = attribute.Key("cairn.step")
	AttrEvent      = attribute.Key("cairn.event")
	AttrStatusFrom = attribute.Key("cairn.status.from")
	AttrStatusTo   = attribute.Key("cairn.status.to")
	AttrActivity   = attribute.Key("cairn.activity")
	AttrTask       = attribute.Key("cairn.task.id")
	AttrAttempt    = attribute.Key("cairn.attempt")
	AttrOutcome    = attribute.Key("cairn.outcome")
	AttrWaited     = attribute.Key("cairn.schedule_to_start_seconds")
)

// tracerName is the instrumentation scope of cairn's spans.
const tracerName = "github.com/cairnhq/cairn"

// Tracing makes OpenTelemetry spans of the engine's transitions and the
// activity runtime's attempts, in the trace each instance was started
// under (interpreter.State.TraceParent). Without a tracer provider it makes
// none, and only passes an instance's trace context on to the requests of
// its http activities.
type Tracing struct {
	on     bool
	tracer trace.Tracer
	prop   propagation.TraceContext
}

// NewTracing returns the tracing of spans to tp; nil tp = tracing off.
// Metrics makes one of its own (Options.TracerProvider); use this one
// with observers of other kinds.
func NewTracing(tp trace.TracerProvider) *Tracing {
	// A nil *sdktrace.TracerProvider (TracerProviderFromEnv's "off") in
	// the interface is off too, not a provider to call.
	if sp, ok := tp.(*sdktrace.TracerProvider); tp == nil || ok && sp == nil {
		return &Tracing{}
	}
	return &Tracing{on: true, tracer: tp.Tracer(tracerName)}
}

// Engine returns an interpreter.Observer that traces each transition and
// passes everything on to next (nil = nothing), so one observer serves
// both metrics and traces.
func (t *Tracing) Engine(next interpreter.Observer) interpreter.Observer {
	if next == nil {
		next = nopEngine{}
	}
	if !t.on {
		return next
	}
	return tracedEngine{Observer: next, t: t}
}

// Activity returns an activity.Observer that traces each attempt, adds the
// attempt's trace context to http bindings' requests, and passes
// everything on to next (nil = nothing).
func (t *Tracing) Activity(next activity.Observer) activity.Observer {
	if next == nil {
		next = nopActivity{}
	}
	return tracedActivity{next: next, t: t}
}

// parent returns ctx under the instance's trace: the remote span context
// of traceparent when it is a valid one, else (for the SDK's ids, see
// NewTracerProvider) the instance's own derived trace id.
func (t *Tracing) parent(ctx context.Context, traceparent, instance string) context.Context {
	if traceparent != "" {
		pctx := t.prop.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
		if trace.SpanContextFromContext(pctx).IsValid() {
			return pctx
		}
	}
	if instance == "" {
		return ctx
	}
	return context.WithValue(ctx, instanceKey{}, instance)
}

type tracedEngine struct {
	interpreter.Observer // OnTimerFired, OnReclaim, OnStoreCall go straight on
	t                    *Tracing
}

// OnScheduleRun passes a tick on when the wrapped observer counts them.
func (o tracedEngine) OnScheduleRun(schedule, outcome string) {
	if so, ok := o.Observer.(interpreter.ScheduleObserver); ok {
		so.OnScheduleRun(schedule, outcome)
	}
}

func (o tracedEngine) OnTransition(info interpreter.TransitionInfo) {
	o.Observer.OnTransition(info)
	ctx := o.t.parent(context.Background(), info.Trace, string(info.Instance))
	_, span := o.t.tracer.Start(ctx, "transition "+info.Workflow, trace.WithTimestamp(info.Began))
	if span.IsRecording() {
		span.SetAttributes(
			AttrInstance.String(string(info.Instance)), AttrWorkflow.String(info.Workflow),
			AttrStep.String(string(info.Step)), AttrEvent.String(string(info.Event)),
			AttrStatusFrom.String(string(info.From)), AttrStatusTo.String(string(info.To)),
		)
		if info.To == interpreter.StatusFailed && info.From != interpreter.StatusFailed {
			span.SetStatus(codes.Error, "the instance failed")
		}
	}
	span.End(trace.WithTimestamp(info.Began.Add(info.Duration)))
}

type tracedActivity struct {
	next activity.Observer
	t    *Tracing
}

func (o tracedActivity) TaskStarted(ctx context.Context, t activity.Task, waited time.Duration) context.Context {
	ctx = o.next.TaskStarted(ctx, t, waited)
	if !o.t.on {
		// No spans; the instance's trace context alone still reaches the
		// http bindings' requests, so the services they call can join it.
		if t.Trace == "" {
			return ctx
		}
		return o.t.prop.Extract(ctx, propagation.MapCarrier{"traceparent": t.Trace})
	}
	ctx, span := o.t.tracer.Start(o.t.parent(ctx, t.Trace, t.InstanceID), "activity "+t.Activity)
	if span.IsRecording() {
		span.SetAttributes(
			AttrInstance.String(t.InstanceID), AttrWorkflow.String(t.Workflow),
			AttrStep.String(t.StepID), AttrActivity.String(t.Activity),
			AttrTask.String(t.ID), AttrAttempt.Int(t.Attempt),
		)
		if waited >= 0 {
			span.SetAttributes(AttrWaited.Float64(waited.Seconds()))
		}
	}
	return ctx
}

func (o tracedActivity) TaskFinished(ctx context.Context, t activity.Task, outcome string, d time.Duration) {
	o.next.TaskFinished(ctx, t, outcome, d)
	if !o.t.on {
		return
	}
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		switch outcome {
		case "":
			// Stopped here without an outcome; it runs again elsewhere.
			span.SetAttributes(AttrOutcome.String("abandoned"))
		case activity.OutcomeCompleted:
			span.SetAttributes(AttrOutcome.String(outcome))
		default:
			span.SetAttributes(AttrOutcome.String(outcome))
			span.SetStatus(codes.Error, "the attempt "+strings.ReplaceAll(outcome, "_", " "))
		}
	}
	span.End()
}

func (o tracedActivity) InjectTrace(ctx context.Context, h http.Header) {
	o.next.InjectTrace(ctx, h)
	o.t.prop.Inject(ctx, propagation.HeaderCarrier(h))
}

type nopEngine struct{}

func (nopEngine) OnTransition(interpreter.TransitionInfo) {}
func (nopEngine) OnTimerFired(time.Duration)              {}
func (nopEngine) OnReclaim(int, int)                      {}
func (nopEngine) OnStoreCall(string, error)               {}

type nopActivity struct{}

func (nopActivity) TaskStarted(ctx context.Context, _ activity.Task, _ time.Duration) context.Context {
	return ctx
}
func (nopActivity) TaskFinished(context.Context, activity.Task, string, time.Duration) {}
func (nopActivity) InjectTrace(context.Context, http.Header)                           {}

// instanceKey carries, in a span's context, the id of an instance started
// without a trace context, for instanceIDs.
type instanceKey struct{}

// instanceIDs gives the root spans of an instance started without a trace
// context one trace id, derived from the instance id, so its transitions
// and attempts still form one trace; every other id is random. An id
// reused after its instance finished shares that trace.
type instanceIDs struct{}

func (instanceIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	if id, ok := ctx.Value(instanceKey{}).(string); ok {
		sum := sha256.Sum256([]byte("cairn instance\x00" + id))
		copy(tid[:], sum[:])
	}
	for !tid.IsValid() {
		putRandom(tid[:])
	}
	return tid, newSpanID()
}

func (instanceIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

func newSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		putRandom(sid[:])
	}
	return sid
}

// putRandom fills b from math/rand/v2's generator, which is safe for
// concurrent use: trace ids need to be unique, not secret.
func putRandom(b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := rand.Uint64()
		for j := i; j < len(b) && j < i+8; j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
}

// NewTracerProvider returns an SDK tracer provider for cairn's spans: the
// resource says service.name "cairn" (OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override it), and an instance started without
// a traceparent gets a trace id of its own (see instanceIDs). The sampler
// is the SDK's, OTEL_TRACES_SAMPLER included. opts come last and win.
func NewTracerProvider(opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	res, err := resource.New(context.Background(),
		resource.WithAttributes(attribute.String("service.name", "cairn")),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		// A malformed OTEL_RESOURCE_ATTRIBUTES: keep what was read.
		res = resource.Default()
	}
	return sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{
		sdktrace.WithResource(res), sdktrace.WithIDGenerator(instanceIDs{}),
	}, opts...)...)
}

// TracerProviderFromEnv returns the tracer provider the standard
// OpenTelemetry variables ask for: one exporting over OTLP/HTTP when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set,
// nil (tracing off) when neither is, or OTEL_SDK_DISABLED is true, or
// OTEL_TRACES_EXPORTER is none. The exporter reads the other
// OTEL_EXPORTER_OTLP_* variables (headers, timeout, compression, TLS)
// itself. Call Shutdown on the provider at exit, to send the last spans.
func TracerProviderFromEnv(ctx context.Context, getenv func(string) string) (*sdktrace.TracerProvider, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return nil, nil
	}
	switch e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e {
	case "", "otlp":
	case "none":
		return nil, nil
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER is %q: cairn exports traces over otlp only (or none)", e)
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(getenv(name)); p != "" {
			if p != "http/protobuf" {
				return nil, fmt.Errorf("%s is %q: cairn exports traces over OTLP/HTTP only (http/protobuf, port 4318 on a collector)", name, p)
			}
			break // the traces-specific variable wins over the general one
		}
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	return NewTracerProvider(sdktrace.WithBatcher(exp)), nil
}
