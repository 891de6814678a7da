package interpreter

import (
	"encoding/json"
	"testing"
)

// TestStepLeavesStateAlone drives flows that set variables on the main
// path and in branches (and progress lists that write the parent's)
// and checks that no Step call changes the state it was given, which
// the run shares with it until it writes (State.clone, run.ownVars).
func TestStepLeavesStateAlone(t *testing.T) {
	for _, name := range []string{reserveTicket, "Fan", "Progress", "Par", "Try", "OnError", "LoopTry", "Nested"} {
		t.Run(name, func(t *testing.T) {
			def := loadFlow(t, name)
			in := New(Options{})
			input := json.RawMessage(`[1,2,3,4]`)
			if name == reserveTicket {
				input = json.RawMessage(`"user1"`)
			}
			ni := Instantiate(def, "i1", input, t0)
			st, queue := ni.State, []Event{ni.Start}
			timers := map[string]bool{}
			for n := 0; len(queue) > 0 && n < 200; n++ {
				ev := queue[0]
				queue = queue[1:]
				if ev.Time.IsZero() {
					ev.Time = t0
				}
				before, _ := json.Marshal(st)
				tr, err := in.Step(def, st, ev)
				if err != nil {
					t.Fatal(err)
				}
				if after, _ := json.Marshal(st); string(after) != string(before) {
					t.Fatalf("step %d (%s) changed its state:\n%s\nto\n%s", n, ev.Kind, before, after)
				}
				if tr == nil {
					continue
				}
				for _, c := range tr.Commands {
					switch c := c.(type) {
					case *ScheduleTask:
						queue = append(queue, Event{Kind: EvCompleted, TaskID: c.TaskID, Data: json.RawMessage(`{"v":1}`)})
					case *StartTimer:
						timers[c.ID] = true
					case *CancelTimer:
						delete(timers, c.ID)
					}
				}
				if len(queue) == 0 {
					for id := range timers {
						delete(timers, id)
						queue = append(queue, Event{Kind: EvTimer, Timer: id, Time: t0.Add(24 * 3600e9)})
						break
					}
				}
				st = tr.State
			}
			t.Logf("%s, %d variables", st.Status, len(st.Vars))
		})
	}
}
