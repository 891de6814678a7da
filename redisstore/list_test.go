package redisstore_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/redisstore"
)

type listed struct {
	created time.Time
	id      interpreter.InstanceID
	status  interpreter.RuntimeStatus
}

// seed creates n instances; created times repeat (ties) and ids are not in
// created order; every third is Completed.
func seed(e *env, n int) []listed {
	var all []listed
	r := rand.New(rand.NewPCG(1, 2))
	for i, k := range r.Perm(n) {
		id := fmt.Sprintf("%c-%05d", "abcXYZ"[k%6], k)
		created := t0.Add(time.Duration(i/7) * time.Millisecond)
		if err := e.s.CreateInstance(e.ctx, newInstance(id, created, fmt.Sprint(k))); err != nil {
			e.t.Fatal(err)
		}
		l := listed{created, interpreter.InstanceID(id), interpreter.StatusPending}
		if k%3 == 0 {
			e.finish(id, interpreter.StatusCompleted)
			l.status = interpreter.StatusCompleted
		}
		all = append(all, l)
	}
	slices.SortFunc(all, func(a, b listed) int {
		return cmp.Or(a.created.Compare(b.created), strings.Compare(string(a.id), string(b.id)))
	})
	return all
}

// pages lists everything matching q page by page.
func pages(e *env, q interpreter.ListQuery) ([]interpreter.InstanceStatus, int) {
	e.t.Helper()
	var all []interpreter.InstanceStatus
	n := 0
	for {
		page, tok, err := e.s.ListInstances(e.ctx, q)
		if err != nil {
			e.t.Fatal(err)
		}
		n++
		if len(page) > q.Top {
			e.t.Fatalf("page of %d > top %d", len(page), q.Top)
		}
		all = append(all, page...)
		if tok == "" {
			return all, n
		}
		if n > 10000 {
			e.t.Fatal("paging does not end")
		}
		q.ContinuationToken = tok
	}
}

func checkListed(t *testing.T, got []interpreter.InstanceStatus, want []listed) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("listed %d instances, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].id || !got[i].CreatedTime.Equal(want[i].created) || got[i].Status != want[i].status {
			t.Fatalf("item %d = %s %v %s, want %s %v %s", i, got[i].ID, got[i].CreatedTime, got[i].Status,
				want[i].id, want[i].created, want[i].status)
		}
	}
}

func TestListPaging(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	all := seed(e, 1000)

	got, n := pages(e, interpreter.ListQuery{Top: 100})
	checkListed(t, got, all)
	if n > 11 {
		t.Errorf("%d pages for 1000 instances at top=100", n)
	}
	if got[0].Input != nil {
		t.Errorf("input without WithInput: %s", got[0].Input)
	}

	// Filters: status, prefix, time range; with input.
	var want []listed
	from, to := t0.Add(20*time.Millisecond), t0.Add(90*time.Millisecond)
	for _, l := range all {
		if l.status == interpreter.StatusCompleted && strings.HasPrefix(string(l.id), "X") &&
			!l.created.Before(from) && !l.created.After(to) {
			want = append(want, l)
		}
	}
	got, _ = pages(e, interpreter.ListQuery{
		Top: 7, Statuses: []interpreter.RuntimeStatus{interpreter.StatusCompleted}, Prefix: "X",
		CreatedFrom: from, CreatedTo: to, WithInput: true,
	})
	checkListed(t, got, want)
	for _, s := range got {
		if k := strings.TrimLeft(string(s.ID)[2:], "0"); string(s.Input) != cmp.Or(k, "0") {
			t.Fatalf("%s input %s", s.ID, s.Input)
		}
	}

	// Pages of one across ties.
	got, _ = pages(e, interpreter.ListQuery{Top: 1, CreatedTo: t0.Add(3 * time.Millisecond)})
	checkListed(t, got, all[:28])

	if _, _, err := e.s.ListInstances(e.ctx, interpreter.ListQuery{ContinuationToken: "%%%"}); err == nil {
		t.Fatal("bad token accepted")
	}
}

// TestListBounded: a page reads a bounded part of the index, whatever the
// number of instances.
func TestListBounded(t *testing.T) {
	e := newEnv(t, redisstore.Options{})
	e.single("it counts the round trips of one redis-server; on a cluster a call spans up to 3 masters (internal/e2e cost_cluster_test.go measures those)")
	seed(e, 1000)
	trips, cmds := e.trips.measure(func() {
		page, tok, err := e.s.ListInstances(e.ctx, interpreter.ListQuery{Top: 10})
		if err != nil || len(page) != 10 || tok == "" {
			t.Fatalf("page %d %q %v", len(page), tok, err)
		}
	})
	if trips != 2 || len(cmds) > e.s.Partitions()+10 {
		t.Fatalf("%d round trips, %d commands", trips, len(cmds))
	}
}

// TestListStableUnderChange: instances purged or added between pages do
// not make others appear twice or vanish.
func TestListStableUnderChange(t *testing.T) {
	e := newEnv(t, redisstore.Options{Partitions: 4})
	all := seed(e, 300)
	q := interpreter.ListQuery{Top: 50}
	seen := map[interpreter.InstanceID]int{}
	purged := map[interpreter.InstanceID]bool{}
	for page := 0; ; page++ {
		items, tok, err := e.s.ListInstances(e.ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			seen[it.ID]++
		}
		if tok == "" {
			break
		}
		q.ContinuationToken = tok
		// Purge a finished instance not listed yet, add a new one at the end.
		for _, l := range all {
			if l.status == interpreter.StatusCompleted && seen[l.id] == 0 && !purged[l.id] {
				if err := e.s.Purge(e.ctx, l.id); err != nil {
					t.Fatal(err)
				}
				purged[l.id] = true
				break
			}
		}
		e.create(fmt.Sprintf("new-%d", page), t0.Add(time.Hour))
	}
	for _, l := range all {
		if n := seen[l.id]; n != 1 && !purged[l.id] || n != 0 && purged[l.id] {
			t.Fatalf("%s seen %d times (purged %v)", l.id, n, purged[l.id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s seen %d times", id, n)
		}
	}
}

// TestListBytewiseOrder: ids of equal created time are ordered bytewise,
// whatever the server's locale, also when the cursor's own instance was
// purged (the index is then searched, not ranked).
func TestListBytewiseOrder(t *testing.T) {
	for _, purge := range []bool{false, true} {
		e := newEnv(t, redisstore.Options{Partitions: 3})
		ids := []string{"b", "B", "a", "A", "é", "e", "Z", "z", "_", "a-b", "ab", "a b", "abc", "ab\u00ff"}
		for _, id := range ids {
			e.create(id, t0)
			e.finish(id, interpreter.StatusCompleted)
		}
		e.create("later", t0.Add(time.Millisecond))
		slices.Sort(ids)
		q := interpreter.ListQuery{Top: 1}
		var order []string
		for {
			page, tok, err := e.s.ListInstances(e.ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range page {
				order = append(order, string(s.ID))
				if purge && s.ID != "later" {
					if err := e.s.Purge(e.ctx, s.ID); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tok == "" {
				break
			}
			q.ContinuationToken = tok
		}
		if want := append(ids, "later"); !slices.Equal(order, want) {
			t.Fatalf("purge %v: order %q, want %q", purge, order, want)
		}
	}
}
