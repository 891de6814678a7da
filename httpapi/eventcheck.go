package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/cairnhq/cairn/interpreter"
)

// checkEvent refuses (400 invalid-event) a raise whose payload breaks the
// JSON Schema that the instance's workflow declares for the event under
// `events:`. It costs a status read only when some definition this
// process knows declares such a schema; the interpreter rejects a payload
// that slips past (EventRejected in the history).
func (s *server) checkEvent(ctx context.Context, id interpreter.InstanceID, name string, data json.RawMessage) error {
	if !s.cat.HasEventSchemas() {
		return nil
	}
	st, err := s.be.FetchStatus(ctx, id)
	if err != nil {
		return notFoundInstance(err, id)
	}
	def, err := s.cat.Get(ctx, st.Name, st.DefHash)
	if err != nil {
		return nil // the instance's own transition reports a broken definition
	}
	sch := def.Events[name]
	if sch == nil {
		return nil
	}
	var v any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &v); err != nil {
			return badRequest("invalid-json", "malformed JSON: %v", err)
		}
	}
	if err := sch.Validate(v); err != nil {
		return &apiError{http.StatusBadRequest, "invalid-event", "the payload of event " + strconv.Quote(name) +
			" does not match the schema workflow " + def.Name + " declares for it under events: " + err.Error()}
	}
	return nil
}

func (g *guarded) HasEventSchemas() bool { return g.cat.HasEventSchemas() }
