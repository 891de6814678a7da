package interpreter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cairnhq/cairn/dsl"
)

// ErrBrokenDefinition: the stored source of a definition no longer parses
// or no longer matches its hash; retrying will not help.
var ErrBrokenDefinition = errors.New("stored definition unusable")

// DefinitionLoader reads stored workflow sources.
type DefinitionLoader interface {
	LoadDefinition(ctx context.Context, name, hash string) ([]byte, error)
}

// Catalog parses stored definitions once and keeps them by content hash, so
// every instance runs on the exact definition it started with and no
// expression is compiled twice.
type Catalog struct {
	loader DefinitionLoader
	mu     sync.RWMutex
	byHash map[string]*dsl.Workflow
	// typedEvents: some definition kept here declares an `events:` schema.
	typedEvents atomic.Bool
}

// NewCatalog returns an empty Catalog reading from loader.
func NewCatalog(loader DefinitionLoader) *Catalog {
	return &Catalog{loader: loader, byHash: map[string]*dsl.Workflow{}}
}

// Add keeps an already parsed definition.
func (c *Catalog) Add(def *dsl.Workflow) {
	c.mu.Lock()
	c.byHash[def.Hash] = def
	c.mu.Unlock()
	if len(def.Events) > 0 {
		c.typedEvents.Store(true)
	}
}

// HasEventSchemas reports whether some definition kept here declares the
// JSON Schema of an event's payload, so a raise may need checking.
func (c *Catalog) HasEventSchemas() bool { return c.typedEvents.Load() }

// Get returns the definition name@hash, loading and parsing it on first use.
func (c *Catalog) Get(ctx context.Context, name, hash string) (*dsl.Workflow, error) {
	c.mu.RLock()
	def := c.byHash[hash]
	c.mu.RUnlock()
	if def != nil {
		return def, nil
	}
	src, err := c.loader.LoadDefinition(ctx, name, hash)
	if err != nil {
		return nil, fmt.Errorf("workflow %s@%.12s: %w", name, hash, err)
	}
	def, err = dsl.Parse(name+".yaml", src)
	if err != nil {
		return nil, fmt.Errorf("stored workflow %s@%.12s no longer parses: %w: %w", name, hash, ErrBrokenDefinition, err)
	}
	if def.Hash != hash {
		return nil, fmt.Errorf("stored workflow %s@%.12s hashes to %.12s: %w", name, hash, def.Hash, ErrBrokenDefinition)
	}
	c.Add(def)
	return def, nil
}
