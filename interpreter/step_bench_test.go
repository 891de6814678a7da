package interpreter

// BenchmarkStep measures one transition of the pure step function, with
// no store: each of ReserveTicket's three transitions (its start, its
// discount's completion, the BookingConfirmed event) from the state the
// one before left, on workflows/reserve-ticket.yaml as
// BenchmarkReserveFlow runs it; and one completion among a forEach's
// branches (Fan, which runs branch threads over the main path's
// variables).
//
//	go test -run '^$' -bench BenchmarkStep -benchmem ./interpreter

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/cairnhq/cairn/dsl"
)

func BenchmarkStep(b *testing.B) {
	t := &testing.T{}
	in := New(Options{})

	src, err := os.ReadFile("../workflows/reserve-ticket.yaml")
	if err != nil {
		b.Fatal(err)
	}
	def, err := dsl.Parse("reserve-ticket.yaml", src)
	if err != nil {
		b.Fatal(err)
	}
	ni := Instantiate(def, "i1", json.RawMessage(`"user1"`), t0)
	steps := []struct {
		name string
		ev   func(st *State) Event
	}{
		{"start", func(*State) Event { return ni.Start }},
		{"completed", func(st *State) Event {
			return Event{Kind: EvCompleted, Time: t0, TaskID: st.Pending.TaskID, Data: json.RawMessage(`20`)}
		}},
		{"raised", func(*State) Event {
			return Event{Kind: EvRaised, Time: t0, Name: "BookingConfirmed", Data: json.RawMessage(`true`), Seq: 1}
		}},
	}
	st := ni.State
	for _, s := range steps {
		from, ev := st, s.ev(st)
		tr, err := in.Step(def, from, ev)
		if err != nil || tr == nil {
			b.Fatalf("%s: %v %v", s.name, tr, err)
		}
		st = tr.State
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if tr, err := in.Step(def, from, ev); err != nil || tr == nil {
					b.Fatal(tr, err)
				}
			}
		})
	}
	if st.Status != StatusCompleted {
		b.Fatalf("ReserveTicket ended %s", st.Status)
	}

	fan := loadFlow(t, "Fan")
	fi := Instantiate(fan, "i2", nil, t0)
	tr, err := in.Step(fan, fi.State, fi.Start)
	if err != nil || tr == nil {
		b.Fatal(tr, err)
	}
	var task string
	for _, c := range tr.Commands {
		if s, ok := c.(*ScheduleTask); ok {
			task = s.TaskID
			break
		}
	}
	from := tr.State
	ev := Event{Kind: EvCompleted, Time: t0, TaskID: task, Data: json.RawMessage(`{"v":1}`)}
	b.Run("fan-branch", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if tr, err := in.Step(fan, from, ev); err != nil || tr == nil {
				b.Fatal(tr, err)
			}
		}
	})
}
