package dsl

import (
	"strings"
	"testing"
)

func TestFlowScopes(t *testing.T) {
	ok := []string{
		// a while's condition sees what its body sets
		"steps:\n  - while:\n      condition: done != true\n      max: 3\n      steps: [{set: {done: true}}]\n  - return: ${ done }\n",
		// the catch's error under its own name; what the try and catch set is visible after
		"steps:\n  - try:\n      steps: [{set: {a: 1}}]\n      catch:\n        as: e\n        steps: [{set: {b: '${ e.type }'}}]\n  - return: ${ [a, b] }\n",
		// the default name of a catch's error is error
		"steps:\n  - try:\n      steps: [{activity: A}]\n      catch:\n        steps: [{return: '${ error.message }'}]\n",
		// onError on any kind sees error and what the step set before failing
		"steps:\n  - switch:\n      - when: input == 1\n        steps: [{set: {x: 1}}]\n    onError:\n      - return: ${ [x, error.type] }\n",
		// a forEach's item and the parent's variables inside its body; the result after it
		"steps:\n  - set: {k: 2}\n  - forEach:\n      items: ${ input }\n      steps: [{set: {y: '${ item * k }'}}]\n      result: r\n  - return: ${ r }\n",
		// a branch sees the variables set before the parallel step
		"steps:\n  - set: {k: 2}\n  - parallel:\n      branches:\n        - - set: {y: '${ k }'}\n        - - set: {z: '${ k }'}\n      result: r\n  - return: ${ r }\n",
		// an all's result is visible in its onTimeout
		"steps:\n  - wait:\n      all: [{event: A}, {event: B}]\n      timeout: 1s\n      result: got\n      onTimeout: [{return: '${ got }'}]\n",
		// call result
		"steps:\n  - call: Other\n    input: ${ input }\n    result: out\n  - return: ${ out }\n",
	}
	for _, body := range ok {
		parseOK(t, "name: X\n"+body)
	}
	bad := map[string]string{
		"steps:\n  - parallel:\n      branches:\n        - - set: {y: 1}\n        - - set: {z: '${ y }'}\n":                                      "variable 'y' is set only inside a parallel branch or forEach body (at 5:19)",
		"steps:\n  - forEach:\n      items: [1]\n      steps: [{set: {y: 1}}]\n  - return: ${ y }\n":                                             "variable 'y' is set only inside a parallel branch",
		"steps:\n  - forEach:\n      items: [1]\n      as: it\n      steps: []\n  - return: ${ it }\n":                                           "'it' is the item of a forEach, visible only inside its steps",
		"steps:\n  - try:\n      steps: []\n      catch:\n        as: e\n        steps: []\n  - return: ${ e }\n":                                "'e' is the error of a catch, visible only inside its steps",
		"steps:\n  - try:\n      steps: []\n      catch:\n        steps: []\n  - return: ${ error }\n":                                           "'error' is defined only inside onError and catch steps",
		"steps:\n  - wait:\n      any: [{event: A}]\n      timeout: 1s\n      result: got\n      onTimeout: [{return: '${ got }'}]\n":            "variable 'got' is not set on any path",
		"steps:\n  - while:\n      condition: true\n      max: 0\n      steps: [{activity: A}]\n":                                                "'max' must be a whole number from 1 to 100000",
		"steps:\n  - while:\n      condition: true\n      max: 2.5\n      steps: [{activity: A}]\n":                                              "'max' must be a whole number",
		"steps:\n  - forEach:\n      items: [1]\n      parallel: true\n      maxConcurrency: 5000\n      steps: [{activity: A}]\n":               "'maxConcurrency' must be a whole number from 1 to 1000",
		"steps:\n  - forEach:\n      items: [1]\n      parallel: yes please\n      steps: [{activity: A}]\n":                                     "'parallel' must be true or false",
		"steps:\n  - parallel:\n      branches: [a]\n":                                                                                           "steps must be a list",
		"steps:\n  - try:\n      steps: []\n      catch:\n        errors: []\n        steps: []\n":                                               "'errors' must be a list of error types",
		"steps:\n  - wait:\n      any: [{event: A, timeout: 1s}]\n":                                                                              "unknown field 'timeout' in an item of 'any'",
		"steps:\n  - while:\n      condition: x\n      max: 2\n      steps: [{set: {x: true}}]\n      until: 3\n":                                "unknown field 'until' in a while",
		"steps:\n  - forEach:\n      items: [1]\n      steps:\n        - continueAsNew: {input: 1}\n":                                            "'continueAsNew' restarts the whole workflow, so it cannot stand inside",
		"steps:\n  - set: {a: 1}\n    onError: [{fail: {error: X}}]\n  - fail: {error: Y}\n    onError: []\n  - return: ${ a }\n  - return: 2\n": "the return at 7:5 always ends the workflow",
	}
	for body, want := range bad {
		is := parseIssues(t, "name: X\n"+body)
		if !strings.Contains(is.Error(), want) {
			t.Errorf("%s\ngot %v\nwant %q", body, is, want)
		}
	}
}

func TestFlowModel(t *testing.T) {
	wf := parseOK(t, `name: X
timeout: 2h
steps:
  - id: loop
    while:
      condition: n < 3
      max: 7
      steps:
        - set: {n: 1}
  - id: guard
    try:
      steps:
        - id: fan
          parallel:
            branches:
              - - activity: A
              - []
            result: r
      catch:
        as: e
        errors: [X, Y]
        steps: [{set: {m: 1}}]
    onError: []
  - id: each
    forEach:
      items: [1, 2]
      as: it
      parallel: true
      maxConcurrency: 2
      steps: [{set: {k: 1}}]
  - wait: {all: [{event: A}, {event: B}]}
  - id: sub
    call: Other
  - continueAsNew: {input: 1}
`)
	checkModel(t, wf)
	if wf.Timeout.String() != "2h0m0s" {
		t.Errorf("timeout %v", wf.Timeout)
	}
	w := wf.ByID["loop"].(*WhileStep)
	if w.Max != 7 || w.Block != "loop#body" || w.Condition.Source != "n < 3" || wf.Owner["loop#body"] != w {
		t.Errorf("while %+v", w)
	}
	tr := wf.ByID["guard"].(*TryStep)
	if tr.Catch.As != "e" || strings.Join(tr.Catch.Errors, ",") != "X,Y" || !tr.Catch.Handles("Y") || tr.Catch.Handles("Z") || tr.OnError == nil {
		t.Errorf("try %+v", tr)
	}
	if !IsHandler(tr, tr.Catch.Block) || !IsHandler(tr, tr.OnErrorBlock) || IsHandler(tr, tr.Block) {
		t.Error("IsHandler")
	}
	p := wf.ByID["fan"].(*ParallelStep)
	if len(p.Branches) != 2 || p.Branches[1].Block != "fan#branch1" || p.Result != "r" {
		t.Errorf("parallel %+v", p)
	}
	f := wf.ByID["each"].(*ForEachStep)
	if !f.Parallel || f.MaxConcurrency != 2 || f.As != "it" {
		t.Errorf("forEach %+v", f)
	}
	ws := wf.ByID["steps[3]"].(*WaitStep)
	if !ws.All || strings.Join(ws.Events, ",") != "A,B" {
		t.Errorf("wait %+v", ws)
	}
	if c := wf.ByID["sub"].(*CallStep); c.Workflow != "Other" {
		t.Errorf("call %+v", c)
	}
	if _, ok := wf.ByID["steps[5]"].(*ContinueAsNewStep); !ok {
		t.Error("continueAsNew")
	}
}
