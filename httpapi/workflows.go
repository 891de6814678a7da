package httpapi

import (
	"errors"
	"mime"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/cairnhq/cairn/dsl"
	"github.com/cairnhq/cairn/interpreter"
	"github.com/cairnhq/cairn/schema"
)

// The JSON of /v1 is the API's own (openapi.json's WorkflowInfo and
// Workflow schemas), converted from the store's values, so that a change
// to those does not change what clients read.

// workflowInfo is one deployed workflow as GET /v1/workflows lists it.
type workflowInfo struct {
	Name       string        `json:"name"`
	LatestHash string        `json:"latestHash"`
	Versions   []versionInfo `json:"versions"`
}

// versionInfo is one stored version of a workflow.
type versionInfo struct {
	Hash        string    `json:"hash"`
	CreatedTime time.Time `json:"createdTime"`
}

// workflowDoc is one workflow version as GET /v1/workflows/{name} shows it.
type workflowDoc struct {
	Name       string        `json:"name"`
	Hash       string        `json:"hash"`
	LatestHash string        `json:"latestHash"`
	Source     string        `json:"source"`
	Versions   []versionInfo `json:"versions"`
}

func infoOf(d interpreter.DefinitionInfo) workflowInfo {
	return workflowInfo{Name: d.Name, LatestHash: d.Latest, Versions: versionsOf(d.Versions)}
}

// versionsOf is never nil: no versions are [], not null.
func versionsOf(vs []interpreter.Version) []versionInfo {
	out := make([]versionInfo, len(vs))
	for i, v := range vs {
		out[i] = versionInfo{Hash: v.Hash, CreatedTime: v.Created}
	}
	return out
}

// putResult answers a deployment.
type putResult struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
	// Created: the workflow name is new (201); otherwise a version was
	// added or the content was already deployed (200).
	Created bool `json:"created"`
	// Issues are warnings; a definition with errors is refused.
	Issues dsl.Issues `json:"issues"`
}

// validateResult answers POST /v1/validate for a valid definition.
type validateResult struct {
	Valid  bool       `json:"valid"`
	Name   string     `json:"name"`
	Hash   string     `json:"hash"`
	Issues dsl.Issues `json:"issues"`
}

// GET /v1/workflows
func (s *server) listWorkflows(c *gin.Context) {
	defs, err := s.be.ListDefinitions(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]workflowInfo, len(defs))
	for i, d := range defs {
		out[i] = infoOf(d)
	}
	writeJSON(c, http.StatusOK, gin.H{"workflows": out})
}

// GET /v1/workflows/{name}[?hash=]
func (s *server) getWorkflow(c *gin.Context) {
	name := c.Param("name")
	ctx := c.Request.Context()
	info, err := s.be.DescribeDefinition(ctx, name)
	if err != nil {
		s.fail(c, unknownWorkflow(err, name))
		return
	}
	hash := c.Query("hash")
	if hash == "" {
		hash = info.Latest
	}
	src, err := s.be.LoadDefinition(ctx, name, hash)
	if errors.Is(err, interpreter.ErrNotFound) {
		s.fail(c, &apiError{http.StatusNotFound, "not-found", "workflow " + strconv.Quote(name) + " has no version " + strconv.Quote(hash)})
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, workflowDoc{Name: name, Hash: hash, LatestHash: info.Latest, Source: string(src), Versions: versionsOf(info.Versions)})
}

func unknownWorkflow(err error, name string) error {
	if errors.Is(err, interpreter.ErrNotFound) {
		return &apiError{http.StatusNotFound, "unknown-workflow", "workflow " + strconv.Quote(name) + " is not deployed"}
	}
	return err
}

// readYAML reads a definition body and lints it: the parsed workflow, or
// an error (dsl.Issues → 422) holding every located problem.
func (s *server) readYAML(c *gin.Context, filename string) (*dsl.Workflow, dsl.Issues, error) {
	src, err := s.readBody(c)
	if err != nil {
		return nil, nil, err
	}
	if !utf8.Valid(src) {
		off := invalidUTF8Offset(src)
		line, col := lineCol(src, off)
		return nil, nil, badRequest("invalid-utf8", "the body is not valid UTF-8 at line %d, column %d (byte offset %d)", line, col, off)
	}
	// Lint runs the JSON Schema and the parser; Parse then gives the
	// workflow (definitions are deployed rarely: parsing twice is fine).
	issues := schema.Lint(filename, src)
	if issues.HasErrors() {
		return nil, nil, issues
	}
	def, err := dsl.Parse(filename, src)
	if err != nil {
		var iss dsl.Issues
		if errors.As(err, &iss) {
			return nil, nil, iss
		}
		return nil, nil, err
	}
	if issues == nil {
		issues = dsl.Issues{}
	}
	return def, issues, nil
}

// yamlTypes are the Content-Types PUT /v1/workflows accepts.
var yamlTypes = map[string]bool{
	"application/yaml": true, "text/yaml": true, "application/x-yaml": true, "text/x-yaml": true,
}

// PUT /v1/workflows/{name} (body: the YAML)
func (s *server) putWorkflow(c *gin.Context) {
	name := c.Param("name")
	ct := c.GetHeader("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || !yamlTypes[mt] {
		s.fail(c, &apiError{http.StatusUnsupportedMediaType, "unsupported-media-type",
			"the body must be the workflow's YAML with Content-Type application/yaml or text/yaml (was " + strconv.Quote(ct) + ")"})
		return
	}
	def, issues, err := s.readYAML(c, name+".yaml")
	if err != nil {
		s.fail(c, err)
		return
	}
	if def.Name != name {
		s.fail(c, badRequest("name-mismatch", "the URL names workflow %q but the YAML's name is %q", name, def.Name))
		return
	}
	if err := s.checkScheduleIDs(c.Request.Context(), def); err != nil {
		s.fail(c, err)
		return
	}
	created, err := s.be.PutDefinition(c.Request.Context(), name, def.Hash, def.Source, s.now().UTC())
	if err != nil {
		s.fail(c, err)
		return
	}
	// The same line as a deployment from --workflows files (hash cut to
	// 12 characters there too), with source "api" instead of a file.
	s.log.Info("workflow deployed", "name", name, "hash", def.Hash[:min(12, len(def.Hash))], "source", "api", "new", created)
	code := http.StatusOK
	if created {
		code = http.StatusCreated
		c.Header("Location", requestOrigin(c.Request)+"/v1/workflows/"+name)
	}
	writeJSON(c, code, putResult{Name: name, Hash: def.Hash, Created: created, Issues: issues})
}

// POST /v1/validate (body: YAML; ?filename= names it in messages)
func (s *server) validate(c *gin.Context) {
	filename := c.Query("filename")
	if filename == "" {
		filename = "workflow.yaml"
	}
	def, issues, err := s.readYAML(c, filename)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, validateResult{Valid: true, Name: def.Name, Hash: def.Hash, Issues: issues})
}
