package redisstore

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
)

// checkDecodeTask fails unless decodeTask answers j as json.Unmarshal does.
func checkDecodeTask(t *testing.T, j string) {
	t.Helper()
	var got, want interpreter.ScheduleTask
	err := decodeTask(j, &got)
	werr := json.Unmarshal([]byte(j), &want)
	if (err != nil) != (werr != nil) || (werr == nil && !reflect.DeepEqual(got, want)) {
		t.Fatalf("decodeTask(%q)\n got %+v (%v)\nwant %+v (%v)", j, got, err, want, werr)
	}
}

var taskSeeds = []string{
	`{"task":"t1","instance":"a","activity":"Charge","input":{"amount":3,"s":"x\"y"},"attempt":1,"step":"s1","def":"h1","workflow":"Wf","queue":"local","timeout":60000000000}`,
	`{"task":"t1","instance":"a","activity":"A","input":null,"attempt":0,"step":"s","def":"h","workflow":"W","queue":"q","scheduleToStart":1,"heartbeat":2,"trace":"00-ab-cd-01"}`,
	`{"task":"t1","instance":"a","activity":"A","input":[1,[2,{"a":"]"}]],"attempt":2,"step":"s","def":"h","workflow":"W","queue":"q"}`,
	`{"task":"t\u00e9","instance":"a","activity":"A","input":"s","attempt":2,"step":"s","def":"h","workflow":"W","queue":"q"}`,
	`{"task":"t","instance":"a","activity":"A","input":1e3,"attempt":01,"step":"s","def":"h","workflow":"W","queue":"q"}`,
	`{"task":"t","instance":"a","activity":"A","input":tru,"attempt":1,"step":"s","def":"h","workflow":"W","queue":"q"}`,
	`{"task":"t","instance":"a","activity":"A","input":{"a":1},"attempt":1.5,"step":"s","def":"h","workflow":"W","queue":"q"}`,
	`{"task":"t","instance":"a","activity":"A","input":{},"attempt":1,"step":"s","def":"h","workflow":"W","queue":"q","timeout":1,"timeout":2}`,
	`{"task":"t","instance":"a","activity":"A","input":{},"attempt":99999999999999999999,"step":"s","def":"h","workflow":"W","queue":"q"}`,
	`{"Task":"t","instance":"a"}`,
	`{"task":"t","instance":"a","activity":"A","input":{},"attempt":1,"step":"s","def":"h","workflow":"W","queue":"q"} `,
	"{\"task\":\"\xff\",\"instance\":\"a\",\"activity\":\"A\",\"input\":{},\"attempt\":1,\"step\":\"s\",\"def\":\"h\",\"workflow\":\"W\",\"queue\":\"q\"}",
	`{"task":"t","instance":"a","activity":"A","input":{"a":[}],"attempt":1,"step":"s","def":"h","workflow":"W","queue":"q"}`,
	`{"task":"t","instance":"a","activity":"A","input":"unterminated,"attempt":1}`,
	``, `{`, `null`,
}

// TestDecodeTaskIsUnmarshal: decodeTask answers as json.Unmarshal does for
// the tasks appendTask writes and for entries in other forms, and reads
// appendTask's usual form by its scan.
func TestDecodeTaskIsUnmarshal(t *testing.T) {
	for _, j := range taskSeeds {
		checkDecodeTask(t, j)
	}
	r := rand.New(rand.NewPCG(7, 8))
	for range 3000 {
		st := randState(r)
		task := &interpreter.ScheduleTask{
			TaskID: randString(r), Instance: st.ID, Activity: randString(r), Input: randJSON(r), Attempt: r.IntN(3),
			StepID: "s1", DefHash: st.DefHash, Workflow: st.Name, Queue: randString(r),
			Timeout: time.Duration(r.IntN(3)) * time.Second, ScheduleToStart: time.Duration(r.IntN(2)), Heartbeat: time.Duration(r.IntN(2)) * time.Minute,
			Trace: st.TraceParent,
		}
		j, err := appendTask(nil, task)
		if err != nil {
			continue
		}
		checkDecodeTask(t, string(j))
	}
	var got interpreter.ScheduleTask
	if !(&taskScan{s: taskSeeds[0]}).task(&got) || !(&taskScan{s: taskSeeds[1]}).task(&got) {
		t.Fatal("appendTask's usual form went to json.Unmarshal")
	}
}

func FuzzDecodeTask(f *testing.F) {
	for _, j := range taskSeeds {
		f.Add(j)
	}
	f.Fuzz(func(t *testing.T, j string) { checkDecodeTask(t, j) })
}

func BenchmarkDecodeTask(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		var t interpreter.ScheduleTask
		if err := decodeTask(taskSeeds[0], &t); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeTaskUnmarshal(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		var t interpreter.ScheduleTask
		if err := json.Unmarshal([]byte(taskSeeds[0]), &t); err != nil {
			b.Fatal(err)
		}
	}
}
