package metrics

import "github.com/prometheus/client_golang/prometheus"

// ActivityRuntime exports the in-process activity runtime's queue depth
// and in-flight count, read from held (activity.Runtime.Held) at each
// scrape. Call it once per Metrics.
func (m *Metrics) ActivityRuntime(held func() (queued, running int)) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cairn_activity_queued",
			Help: "Activity tasks the in-process runtime holds that wait for a slot (their binding's class limit or their activity's concurrency:).",
		}, func() float64 { q, _ := held(); return float64(q) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cairn_activity_in_flight",
			Help: "Activity attempts the in-process runtime runs now.",
		}, func() float64 { _, r := held(); return float64(r) }),
	)
}
