package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cairnhq/cairn/interpreter"
)

// eternal is an eternal workflow: each run publishes its version and
// generation, waits for Next and continues as new. The version line and
// the continueAsNew's options are the test's.
func eternal(version, can string) []byte {
	return []byte(`
name: Eternal
input: {type: object, required: [gen]}
steps:
  - setStatus: {version: ` + version + `, gen: "${ input.gen }"}
  - wait: {event: Next, result: next}
  - if: next == "stop"
    return: ${ input.gen }
  - continueAsNew: ` + can + `
`)
}

// statusOf waits until the instance's custom status is want.
func (e *env) statusOf(id, want string) *interpreter.InstanceStatus {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := e.store.FetchStatus(context.Background(), interpreter.InstanceID(id))
		if err == nil && string(st.CustomStatus) == want {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: custom status %s (%v), want %s", id, st.CustomStatus, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestContinueAsNewUpgrades: an eternal workflow picks up a version
// deployed while it runs at its next continueAsNew (GET status then shows
// the new hash and input); version: same stays; a new input that the new
// version's schema refuses fails the instance with InvalidInput.
func TestContinueAsNewUpgrades(t *testing.T) {
	e := newEnv(t)
	e.run(interpreter.EngineOptions{Consumer: "up"})
	v1 := e.deploy("eternal.yaml", eternal("1", `{input: {gen: "${ input.gen + 1 }"}}`))
	e.start("Eternal", "up-1", map[string]any{"gen": 1})
	e.statusOf("up-1", `{"gen":1,"version":1}`)

	v2 := e.deploy("eternal.yaml", eternal("2", `{input: {gen: "${ input.gen + 1 }"}, version: same}`))
	if v2.Hash == v1.Hash {
		t.Fatal("v2 hashes as v1")
	}
	e.waitFor("up-1", "Next")
	if err := e.raise("up-1", "Next", "go"); err != nil {
		t.Fatal(err)
	}
	st := e.statusOf("up-1", `{"gen":2,"version":2}`)
	if st.DefHash != v2.Hash || string(st.Input) != `{"gen":2}` {
		t.Fatalf("after the upgrade: hash %.12s input %s, want %.12s {\"gen\":2}", st.DefHash, st.Input, v2.Hash)
	}

	// v2 says version: same: a v3 deployed now is not picked up.
	e.deploy("eternal.yaml", eternal("3", `{input: {gen: "${ input.gen + 1 }"}}`))
	e.waitFor("up-1", "Next")
	if err := e.raise("up-1", "Next", "go"); err != nil {
		t.Fatal(err)
	}
	if st := e.statusOf("up-1", `{"gen":3,"version":2}`); st.DefHash != v2.Hash {
		t.Fatalf("version: same moved to %.12s", st.DefHash)
	}

	// A v4 whose input schema the next input breaks (gen must be a
	// string): the v3-started run below fails moving onto it.
	e.start("Eternal", "up-2", map[string]any{"gen": 1}) // on v3, the latest
	e.statusOf("up-2", `{"gen":1,"version":3}`)
	e.deploy("eternal.yaml", []byte(`
name: Eternal
input: {type: object, properties: {gen: {type: string}}}
steps:
  - return: 0
`))
	e.waitFor("up-2", "Next")
	if err := e.raise("up-2", "Next", "go"); err != nil {
		t.Fatal(err)
	}
	fin := e.waitDone("up-2", 20*time.Second)
	if fin.Status != interpreter.StatusFailed {
		t.Fatalf("up-2: %s %s, want Failed", fin.Status, fin.Output)
	}
	var info interpreter.ErrorInfo
	if err := json.Unmarshal(fin.Output, &info); err != nil || info.Type != interpreter.ErrTypeInvalidInput {
		t.Fatalf("up-2's error: %s", fin.Output)
	}
	t.Logf("up-2 failed as wanted: %s", info.Message)
}
