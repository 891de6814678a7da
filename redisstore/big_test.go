package redisstore_test

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

// TestList100k lists and purges 100,000 instances page by page. It takes
// a while, so it runs only with CAIRN_BIG=1.
func TestList100k(t *testing.T) {
	if os.Getenv("CAIRN_BIG") != "1" {
		t.Skip("set CAIRN_BIG=1 to run")
	}
	e := newEnv(t, redisstore.Options{HistoryMax: redisstore.NoHistory})
	const n = 100_000
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				id := fmt.Sprintf("i%06d", i)
				if err := e.s.CreateInstance(e.ctx, newInstance(id, t0.Add(time.Duration(i)*time.Millisecond), "1")); err != nil {
					t.Error(err)
					return
				}
				if i%1000 == 0 {
					e.finish(id, interpreter.StatusFailed)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("created %d in %v", n, time.Since(start))

	start = time.Now()
	page, tok, err := e.s.ListInstances(e.ctx, interpreter.ListQuery{Top: 100})
	if err != nil || len(page) != 100 || tok == "" {
		t.Fatal(len(page), tok, err)
	}
	t.Logf("first page of 100 in %v", time.Since(start))

	start = time.Now()
	got, np := pages(e, interpreter.ListQuery{Top: 100, Statuses: []interpreter.RuntimeStatus{interpreter.StatusFailed}})
	if len(got) != n/1000 {
		t.Fatalf("listed %d failed", len(got))
	}
	t.Logf("all %d Failed (1 in 1000) in %d pages, %v", len(got), np, time.Since(start))

	start = time.Now()
	all, np := pages(e, interpreter.ListQuery{Top: 1000})
	if len(all) != n {
		t.Fatalf("listed %d", len(all))
	}
	t.Logf("all %d in %d pages of 1000, %v", n, np, time.Since(start))

	start = time.Now()
	purged, err := e.s.PurgeMany(e.ctx, time.Time{}, time.Time{}, nil)
	if err != nil || purged != n/1000 {
		t.Fatal(purged, err)
	}
	t.Logf("PurgeMany scanned %d, purged %d in %v", n, purged, time.Since(start))
}
