package metrics

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
)

var (
	backlogDesc = prometheus.NewDesc("cairn_work_backlog",
		"Work items (starts, events, timers, task outcomes) no engine has taken yet, over all partitions.", nil, nil)
	pendingDesc = prometheus.NewDesc("cairn_tasks_pending",
		"Activity tasks waiting for a runtime or worker to take them, per queue: \"local\" for the in-process runtime, else the activity name external workers poll.",
		[]string{"activity"}, nil)
	oldestDesc = prometheus.NewDesc("cairn_tasks_oldest_age_seconds",
		"How long the oldest waiting task of a queue has waited (0 when none waits).", []string{"activity"}, nil)
	memoryDesc = prometheus.NewDesc("cairn_redis_used_memory_bytes",
		"Memory Redis uses (INFO used_memory), summed over a cluster's masters.", nil, nil)
	instancesDesc = prometheus.NewDesc("cairn_instances",
		"Instances per workflow and runtime status now, across all processes.", []string{"workflow", "status"}, nil)
)

// storeCollector reads the store's gauges at each scrape, all reads
// together under one timeout. A read that fails is counted as a store
// error and its gauges are left out of this scrape: Prometheus then shows
// a gap, not a scrape failure that would hide every other metric too.
type storeCollector struct {
	m *Metrics

	mu      sync.Mutex
	failing map[string]bool // kind → its last read failed
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- pendingDesc
	ch <- oldestDesc
	ch <- memoryDesc
	ch <- instancesDesc
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	o := c.m.opts
	if o.Store == nil && o.Counts == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.ReadTimeout)
	defer cancel()
	var wg sync.WaitGroup
	read := func(kind string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.report(kind, f())
		}()
	}
	if s := o.Store; s != nil {
		read(KindBacklog, func() error {
			n, err := s.WorkBacklog(ctx)
			if err == nil {
				ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(n))
			}
			return err
		})
		read(KindMemory, func() error {
			n, err := s.UsedMemory(ctx)
			if err == nil {
				ch <- prometheus.MustNewConstMetric(memoryDesc, prometheus.GaugeValue, float64(n))
			}
			return err
		})
		read(KindTasks, func() error { return c.tasks(ctx, ch) })
	}
	if o.Counts != nil {
		read(KindInstances, func() error {
			counts, err := o.Counts(ctx)
			if err != nil {
				return err
			}
			for wf, byStatus := range counts {
				for status, n := range byStatus {
					ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(n), wf, status)
				}
			}
			return nil
		})
	}
	wg.Wait()
}

// tasks sends the pending count and oldest age of every queue.
func (c *storeCollector) tasks(ctx context.Context, ch chan<- prometheus.Metric) error {
	o := c.m.opts
	queues := []string{interpreter.LocalQueue}
	if o.Queues != nil {
		var err error
		if queues, err = o.Queues(ctx); err != nil {
			return fmt.Errorf("listing the task queues: %w", err)
		}
	}
	waiting, oldest, err := o.Store.TasksWaiting(ctx, queues)
	if err != nil {
		return err
	}
	now := o.Clock()
	for q, n := range waiting {
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n), q)
		age := 0.0
		if at, ok := oldest[q]; ok && n > 0 {
			age = max(now.Sub(at).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age, q)
	}
	return nil
}

// report counts a failed read, and logs when a kind starts failing and
// when it works again, so an outage is two log lines, not one per scrape.
func (c *storeCollector) report(kind string, err error) {
	if err != nil {
		c.m.StoreError(kind)
	}
	c.mu.Lock()
	was := c.failing[kind]
	c.failing[kind] = err != nil
	c.mu.Unlock()
	switch {
	case err != nil && !was:
		c.m.opts.Logger.Warn("metrics: a store gauge cannot be read; it is left out of scrapes until it can", "kind", kind, "err", err)
	case err == nil && was:
		c.m.opts.Logger.Info("metrics: a store gauge can be read again", "kind", kind)
	}
}

// Definitions lists the deployed workflows; redisstore.Store satisfies it.
type Definitions interface {
	ListDefinitions(ctx context.Context) ([]interpreter.DefinitionInfo, error)
}

// Catalog returns parsed definitions; *interpreter.Catalog satisfies it.
type Catalog interface {
	Get(ctx context.Context, name, hash string) (*dsl.Workflow, error)
}

// DefinitionQueues returns an Options.Queues that finds the queues of the
// newest version of every deployed workflow (see TaskQueues), for an
// engine whose in-process runtime runs the activities local reports.
func DefinitionQueues(defs Definitions, cat Catalog, local func(activity string) bool) func(ctx context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		infos, err := defs.ListDefinitions(ctx)
		if err != nil {
			return nil, err
		}
		wfs := make([]*dsl.Workflow, 0, len(infos))
		for _, info := range infos {
			wf, err := cat.Get(ctx, info.Name, info.Latest)
			if err != nil {
				return nil, fmt.Errorf("workflow %s version %s: %w", info.Name, info.Latest, err)
			}
			wfs = append(wfs, wf)
		}
		return TaskQueues(wfs, local), nil
	}
}

// TaskQueues returns the queues the activity steps of defs send their
// tasks to, sorted, interpreter.LocalQueue always among them: the local
// queue for a binding the in-process runtime runs (expr, http) and for an
// unbound name local reports (nil = none), else the activity's own name,
// where external workers poll. It follows the interpreter's routing rule.
func TaskQueues(defs []*dsl.Workflow, local func(activity string) bool) []string {
	seen := map[string]bool{interpreter.LocalQueue: true}
	for _, def := range defs {
		for _, step := range def.ByID {
			a, ok := step.(*dsl.ActivityStep)
			if !ok {
				continue
			}
			opts := def.Activities[a.Activity]
			queue := a.Activity
			switch {
			case opts != nil && opts.Binding != nil && opts.Binding.Kind != dsl.BindWorker:
				queue = interpreter.LocalQueue
			case (opts == nil || opts.Binding == nil) && local != nil && local(a.Activity):
				queue = interpreter.LocalQueue
			}
			seen[queue] = true
		}
	}
	out := make([]string, 0, len(seen))
	for q := range seen {
		out = append(out, q)
	}
	slices.Sort(out)
	return out
}
