package reliability

import (
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/redistest"
)

// TestCrashRecovery runs the mixed workload (http and expr activities,
// events, timers, timeouts, terminations) on one cairn process and kills it
// with SIGKILL at random moments, restarting it each time on the same
// address. Afterwards every instance must have its one correct outcome,
// every transition must appear once in its history, and every activity must
// have run at least once; duplicate executions are counted and reported.
//
// A killed process leaves the work items and activity tasks it held
// pending; the next process takes them over when their lease (30 s) has
// run out, so the test waits for that.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	n, kills := size(300, 2000), size(6, 40)
	span := time.Duration(size(8, 60)) * time.Second
	rs := redistest.Start(t)
	acts := newActivityServer(t)
	o := serveOpts{redis: rs.URL(), addr: freeAddr(t), workflows: writeWorkflows(t, mixedWorkflows(acts.url))}
	book := &logBook{}
	cur := startCairn(t, book, o)
	f := newFleet(t, newClient("http://"+o.addr, ""), acts, "crash", n)
	f.run(span, kills, func(k int) {
		cur.kill()
		p, err := launch(t, book, o)
		if err != nil {
			t.Errorf("restart %d: %v", k+1, err)
			return
		}
		cur = p
	})
	if t.Failed() {
		return
	}
	f.verify()
	book.check(t)
	tasks, execs, dups := acts.totals()
	t.Logf("crash: %d instances, %d SIGKILLs and restarts of cairn; all finished correctly, each transition once in its history; "+
		"http activities: %d tasks, %d executions, %d duplicate executions; %d start requests retried; %d buffered event pairs out of order",
		n, kills, tasks, execs, dups, f.startRetries.Load(), f.reordered.Load())
}
