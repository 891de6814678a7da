package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/schema"
)

// CodeTestFile is the issue code of a mistake in a test file.
const CodeTestFile = "test-file"

// Suite is one test file: a workflow and the cases run against it.
type Suite struct {
	File     string        // the test file
	Workflow *dsl.Workflow // the workflow it tests
	Cases    []*Case
	lib      *library
}

// Case is one simulated instance and what is expected of it.
type Case struct {
	Name   string
	Line   int
	Config Config // Workflow and Child are the suite's
	Expect []Expectation
}

// Expectation is one `expect:` entry: Field is status, output,
// customStatus, error, duration or calls.NAME.
type Expectation struct {
	Field string
	Line  int
	Want  any // JSON-compatible; for error an ErrorWant, for duration a time.Duration
}

// ErrorWant is an expected failure: its type, and text its message holds.
type ErrorWant struct {
	Type    string `json:"type"`
	Message string `json:"message,omitempty"`
}

// LoadError is a test file, or a workflow it names, that cannot be read,
// parsed or linted; Text lists every problem as file:line:col.
type LoadError struct{ Text string }

func (e *LoadError) Error() string { return e.Text }

// Find expands paths to test files: a file stands for itself, a folder
// for its *.test.yaml and *.test.yml files (recursively, skipping hidden
// folders), sorted.
func Find(paths ...string) ([]string, error) { return FindFiles(IsTestFile, paths...) }

// FindFiles expands paths: a file stands for itself, a folder for the
// files below it that match (recursively, skipping hidden folders), sorted
// per folder. It returns what it found even when some path is unreadable.
// cairn lint and cairn test share it.
func FindFiles(match func(path string) bool, paths ...string) ([]string, error) {
	var files, bad []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if match(path) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			bad = append(bad, err.Error())
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	if len(bad) > 0 {
		return files, errors.New(strings.Join(bad, "\n"))
	}
	return files, nil
}

// IsTestFile reports whether a file name is a test file's (*.test.yaml,
// *.test.yml).
func IsTestFile(name string) bool {
	return strings.HasSuffix(name, ".test.yaml") || strings.HasSuffix(name, ".test.yml")
}

// Load reads a test file and the workflow it names, linting the workflow
// (and the workflows its call steps name) as `cairn lint` does. Any
// problem is a *LoadError.
func Load(file string) (*Suite, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, &LoadError{Text: err.Error()}
	}
	root, _, issues := dsl.ReadYAML(file, src)
	if len(issues) > 0 {
		return nil, &LoadError{Text: schema.FormatText(issues, src)}
	}
	p := &parser{file: file}
	s := p.suite(root)
	if len(p.issues) > 0 {
		text := strings.TrimRight(schema.FormatText(p.issues, src), "\n")
		for _, a := range p.also {
			text += "\n" + a
		}
		return nil, &LoadError{Text: text}
	}
	return s, nil
}

// LoadWorkflow reads, lints and parses one workflow file, for a simulation
// without a test file (cairn run). Call steps find their workflows in the
// same folder.
func LoadWorkflow(file string) (*dsl.Workflow, func(string) (*dsl.Workflow, error), error) {
	lib := newLibrary(filepath.Dir(file))
	def, err := lib.load(file)
	if err != nil {
		return nil, nil, err
	}
	if err := lib.preload(def); err != nil {
		return nil, nil, err
	}
	return def, lib.child, nil
}

// library holds the workflows of one folder, by name, for call steps.
type library struct {
	dir    string
	byName map[string]string // workflow name → file
	parsed map[string]*dsl.Workflow
}

func newLibrary(dir string) *library {
	return &library{dir: dir, parsed: map[string]*dsl.Workflow{}}
}

// load lints and parses a workflow file.
func (l *library) load(file string) (*dsl.Workflow, error) {
	if def := l.parsed[file]; def != nil {
		return def, nil
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, &LoadError{Text: err.Error()}
	}
	if issues := schema.Lint(file, src); issues.HasErrors() {
		return nil, &LoadError{Text: schema.FormatText(issues, src)}
	}
	def, err := dsl.Parse(file, src)
	if err != nil {
		return nil, &LoadError{Text: err.Error()}
	}
	l.parsed[file] = def
	return def, nil
}

// child finds the workflow of that name in the folder.
func (l *library) child(name string) (*dsl.Workflow, error) {
	if l.byName == nil {
		l.byName = map[string]string{}
		files, _ := filepath.Glob(filepath.Join(l.dir, "*.y*ml"))
		for _, f := range files {
			if IsTestFile(f) || !(strings.HasSuffix(f, ".yaml") || strings.HasSuffix(f, ".yml")) {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if _, doc, _ := dsl.ReadYAML(f, src); doc != nil {
				if m, ok := doc.(map[string]any); ok {
					if n, ok := m["name"].(string); ok {
						if _, dup := l.byName[n]; !dup {
							l.byName[n] = f
						}
					}
				}
			}
		}
	}
	f, ok := l.byName[name]
	if !ok {
		return nil, fmt.Errorf("no workflow named %s in %s (a simulation runs the children of call steps from the parent's folder)", name, l.dir)
	}
	return l.load(f)
}

// preload loads, and so lints, every workflow that def's call steps name
// and that the folder has, and theirs in turn; one missing from the folder
// is left for the case that reaches it to report.
func (l *library) preload(def *dsl.Workflow) error {
	seen := map[string]bool{def.Name: true}
	todo := []*dsl.Workflow{def}
	for len(todo) > 0 {
		d := todo[0]
		todo = todo[1:]
		for _, s := range d.ByID {
			call, ok := s.(*dsl.CallStep)
			if !ok || seen[call.Workflow] {
				continue
			}
			seen[call.Workflow] = true
			child, err := l.child(call.Workflow)
			var le *LoadError
			if errors.As(err, &le) {
				return err
			}
			if child != nil {
				todo = append(todo, child)
			}
		}
	}
	return nil
}

// parser reads a test file's YAML nodes, keeping every problem with its
// position.
type parser struct {
	file   string
	issues dsl.Issues
	also   []string // other files' problems, already formatted
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.issues = append(p.issues, dsl.Issue{File: p.file, Pos: dsl.Pos{Line: n.Line, Col: n.Column}, Severity: dsl.SevError, Code: CodeTestFile, Message: fmt.Sprintf(format, args...)})
}

// fields walks a mapping's keys, refusing those not in allowed.
func (p *parser) fields(n *yaml.Node, what string, allowed ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping", what)
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ok := false
		for _, a := range allowed {
			ok = ok || a == k.Value
		}
		if !ok {
			p.errorf(k, "unknown field %q in %s (want one of %s)", k.Value, what, strings.Join(allowed, ", "))
			continue
		}
		out[k.Value] = v
	}
	return out
}

func (p *parser) str(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "%s must be a string", what)
		return ""
	}
	return n.Value
}

// value is the JSON value a node denotes.
func (p *parser) value(n *yaml.Node) json.RawMessage {
	var v any
	if err := n.Decode(&v); err != nil {
		p.errorf(n, "%v", err)
		return nil
	}
	raw, err := json.Marshal(jsonable(v))
	if err != nil {
		p.errorf(n, "not a JSON value: %v", err)
		return nil
	}
	return raw
}

// jsonable turns the maps yaml.v3 decodes into ones JSON can encode.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v
}

func (p *parser) duration(n *yaml.Node, what string) time.Duration {
	var v any
	if n.Decode(&v) != nil {
		v = n.Value
	}
	d, err := dsl.ToDuration(v)
	if err != nil {
		p.errorf(n, "%s: %v", what, err)
	}
	return d
}

func (p *parser) suite(root *yaml.Node) *Suite {
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	f := p.fields(root, "a test file", "workflow", "description", "activities", "cases")
	s := &Suite{File: p.file}
	wn, ok := f["workflow"]
	if !ok {
		p.errorf(root, "a test file needs workflow: the path of the workflow it tests, relative to the file")
		return s
	}
	wf := p.str(wn, "workflow")
	if !filepath.IsAbs(wf) {
		wf = filepath.Join(filepath.Dir(p.file), wf)
	}
	s.lib = newLibrary(filepath.Dir(wf))
	def, err := s.lib.load(wf)
	if err == nil {
		err = s.lib.preload(def)
	}
	if err != nil {
		// The workflow's own problems are located in it.
		p.errorf(wn, "workflow %s cannot be simulated: see below", wf)
		p.also = append(p.also, strings.TrimRight(err.Error(), "\n"))
		return s
	}
	s.Workflow = def
	var shared map[string]*Mocks
	if a, ok := f["activities"]; ok {
		shared = p.activities(a)
	}
	cn, ok := f["cases"]
	if !ok || cn.Kind != yaml.SequenceNode || len(cn.Content) == 0 {
		if !ok {
			cn = root
		}
		p.errorf(cn, "a test file needs cases: a list of at least one case")
		return s
	}
	names := map[string]int{}
	for _, c := range cn.Content {
		tc := p.testCase(c, shared)
		if tc == nil {
			continue
		}
		if line, dup := names[tc.Name]; dup && tc.Name != "" {
			p.errorf(c, "case %q is also on line %d: names must differ", tc.Name, line)
		}
		names[tc.Name] = tc.Line
		s.Cases = append(s.Cases, tc)
	}
	return s
}

func (p *parser) testCase(n *yaml.Node, shared map[string]*Mocks) *Case {
	f := p.fields(n, "a case", "name", "input", "instanceId", "startTime", "stopAfter", "activities", "events", "expect")
	c := &Case{Line: n.Line}
	if nn, ok := f["name"]; ok {
		c.Name = p.str(nn, "name")
	} else {
		p.errorf(n, "a case needs a name")
	}
	c.Config.Activities = map[string]*Mocks{}
	for k, m := range shared {
		c.Config.Activities[k] = m
	}
	if v, ok := f["input"]; ok {
		c.Config.Input = p.value(v)
	}
	if v, ok := f["instanceId"]; ok {
		c.Config.ID = interpreter.InstanceID(p.str(v, "instanceId"))
	}
	if v, ok := f["startTime"]; ok {
		t, err := dsl.ToTime(v.Value)
		if err != nil {
			p.errorf(v, "startTime: %v", err)
		}
		c.Config.Start = t
	}
	if v, ok := f["stopAfter"]; ok {
		c.Config.StopAfter = p.duration(v, "stopAfter")
	}
	if v, ok := f["activities"]; ok {
		for k, m := range p.activities(v) {
			c.Config.Activities[k] = m
		}
	}
	if v, ok := f["events"]; ok {
		c.Config.Messages = p.events(v)
	}
	if v, ok := f["expect"]; ok {
		c.Expect = p.expect(v)
	}
	return c
}

// activities reads mocks: NAME: {result|error, takes} answers every call,
// NAME: [{...}, ...] each call in order.
func (p *parser) activities(n *yaml.Node) map[string]*Mocks {
	out := map[string]*Mocks{}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "activities must map activity names to mocks")
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		m := &Mocks{}
		switch v.Kind {
		case yaml.SequenceNode:
			for _, e := range v.Content {
				m.Calls = append(m.Calls, p.mock(e))
			}
			if len(m.Calls) == 0 {
				p.errorf(v, "activity %s: an empty list of mocks answers no call", k.Value)
			}
		default:
			m.Every = true
			m.Calls = []Mock{p.mock(v)}
		}
		out[k.Value] = m
	}
	return out
}

func (p *parser) mock(n *yaml.Node) Mock {
	f := p.fields(n, "a mock", "result", "error", "takes")
	var m Mock
	r, hasR := f["result"]
	e, hasE := f["error"]
	switch {
	case hasR && hasE:
		p.errorf(n, "a mock has a result or an error, not both")
	case hasR:
		m.Result = p.value(r)
	case hasE:
		info := &interpreter.ErrorInfo{Type: interpreter.ErrTypeActivity, Retryable: true}
		if e.Kind == yaml.ScalarNode {
			info.Type = p.str(e, "error")
		} else {
			ef := p.fields(e, "an error", "type", "message", "retryable")
			if t, ok := ef["type"]; ok {
				info.Type = p.str(t, "error.type")
			}
			if msg, ok := ef["message"]; ok {
				info.Message = p.str(msg, "error.message")
			}
			if rt, ok := ef["retryable"]; ok {
				if rt.Decode(&info.Retryable) != nil {
					p.errorf(rt, "retryable must be true or false")
				}
			}
		}
		m.Error = info
	default:
		if n.Kind == yaml.MappingNode && len(n.Content) == 2*len(f) { // else an unknown field said it
			p.errorf(n, "a mock needs result: VALUE or error: {type, message}")
		}
	}
	if t, ok := f["takes"]; ok {
		m.Takes = p.duration(t, "takes")
	}
	return m
}

// events reads the messages sent to the instance.
func (p *parser) events(n *yaml.Node) []Message {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "events must be a list of {after, name, data}")
		return nil
	}
	var out []Message
	for _, e := range n.Content {
		f := p.fields(e, "an event", "after", "name", "data", "terminate", "suspend", "resume")
		var m Message
		if a, ok := f["after"]; ok {
			m.After = p.duration(a, "after")
		} else {
			p.errorf(e, "an event needs after: its virtual time since the start (0s for at once)")
		}
		kinds := 0
		if v, ok := f["name"]; ok {
			m.Name = p.str(v, "name")
			kinds++
		}
		for _, c := range []struct {
			key  string
			kind interpreter.EventKind
		}{{"terminate", interpreter.EvTerminate}, {"suspend", interpreter.EvSuspend}, {"resume", interpreter.EvResume}} {
			if v, ok := f[c.key]; ok {
				m.Control, m.Reason = c.kind, v.Value
				kinds++
			}
		}
		if kinds != 1 {
			p.errorf(e, "an event has exactly one of name (an event), terminate, suspend or resume (with a reason)")
		}
		if d, ok := f["data"]; ok {
			if m.Control != "" {
				p.errorf(d, "data goes with an event name")
			}
			m.Data = p.value(d)
		} else if m.Control == "" {
			m.Data = json.RawMessage("null")
		}
		out = append(out, m)
	}
	return out
}

func (p *parser) expect(n *yaml.Node) []Expectation {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "expect must be a mapping")
		return nil
	}
	allowed := []string{"status", "output", "customStatus", "error", "calls", "duration"}
	f := p.fields(n, "expect", allowed...)
	keyLine := map[string]int{} // a failure points at the key: a block value starts a line later
	for i := 0; i+1 < len(n.Content); i += 2 {
		keyLine[n.Content[i].Value] = n.Content[i].Line
	}
	var out []Expectation
	for _, key := range allowed {
		v, ok := f[key]
		if !ok {
			continue
		}
		e := Expectation{Field: key, Line: keyLine[key]}
		switch key {
		case "status":
			s, ok := interpreter.ParseRuntimeStatus(v.Value)
			if !ok {
				p.errorf(v, "status %q is not a runtime status (Pending, Running, Suspended, Completed, Failed, Terminated)", v.Value)
			}
			e.Want = string(s)
		case "output":
			e.Want = p.decoded(v)
		case "customStatus":
			if v.Kind != yaml.SequenceNode {
				p.errorf(v, "customStatus is the list of every custom status set, in order")
			}
			e.Want = p.decoded(v)
		case "error":
			w := ErrorWant{}
			if v.Kind == yaml.ScalarNode {
				w.Type = p.str(v, "error")
			} else {
				ef := p.fields(v, "error", "type", "message")
				if t, ok := ef["type"]; ok {
					w.Type = p.str(t, "error.type")
				}
				if m, ok := ef["message"]; ok {
					w.Message = p.str(m, "error.message")
				}
			}
			e.Want = w
		case "duration":
			e.Want = p.duration(v, "duration")
		case "calls":
			if v.Kind != yaml.MappingNode {
				p.errorf(v, "calls maps activity names to call counts")
				continue
			}
			for i := 0; i+1 < len(v.Content); i += 2 {
				k, c := v.Content[i], v.Content[i+1]
				var count int
				if c.Decode(&count) != nil || count < 0 {
					p.errorf(c, "calls.%s must be a count", k.Value)
				}
				out = append(out, Expectation{Field: "calls." + k.Value, Line: k.Line, Want: count})
			}
			continue
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

func (p *parser) decoded(n *yaml.Node) any {
	var v any
	_ = json.Unmarshal(p.value(n), &v)
	return v
}
