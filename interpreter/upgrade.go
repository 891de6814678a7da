package interpreter

import (
	"context"

	"github.com/cairnhq/cairn/dsl"
)

// latestFor is the latest deployed version of def's workflow when a
// continueAsNew of def may move onto it (StepOnto), else nil. The store
// answers the latest hash from its cache (no round trip) while its
// deployment subscription is up. A store that does not answer leaves the
// instance on def for this transition, so an eternal workflow upgrades at
// a later continueAsNew instead of stalling.
func (e *Engine) latestFor(ctx context.Context, def *dsl.Workflow) *dsl.Workflow {
	if def == nil || !def.Upgrades {
		return nil
	}
	hash, err := e.store.LatestDefinition(ctx, def.Name)
	if err != nil || hash == def.Hash {
		if err != nil {
			e.log.Warn("reading the latest version failed; a continueAsNew stays on its version", "workflow", def.Name, "err", err)
		}
		return nil
	}
	latest, err := e.cat.Get(ctx, def.Name, hash)
	if err != nil {
		e.log.Warn("loading the latest version failed; a continueAsNew stays on its version", "workflow", def.Name, "hash", hash, "err", err)
		return nil
	}
	return latest
}
