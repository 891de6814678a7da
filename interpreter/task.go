package interpreter

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// TaskRef addresses one delivered activity task in the store: enough to
// complete, fail or extend it without a lookup. The store fills it in; to
// everyone else it is opaque.
type TaskRef struct {
	Partition int        `json:"p"`
	Queue     string     `json:"q"`
	EntryID   string     `json:"e"` // the store's id of the task entry
	Instance  InstanceID `json:"i"`
	TaskID    string     `json:"t"`
}

// Task is one activity task leased to a consumer: where it is (Ref) and
// what to run (Schedule).
type Task struct {
	Ref      TaskRef
	Schedule ScheduleTask
}

// Token is the opaque form of r handed to external workers: URL-safe
// base64 of its JSON, so it can stand in a path as is.
func (r TaskRef) Token() string {
	b, _ := json.Marshal(r)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseTaskToken reads a Token back; a malformed one is ErrNotFound, since
// no task of that name was ever handed out.
func ParseTaskToken(token string) (TaskRef, error) {
	var r TaskRef
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil || r.EntryID == "" || r.Instance == "" || r.Partition < 0 || r.Queue == "" {
		return TaskRef{}, fmt.Errorf("malformed task token: %w", ErrNotFound)
	}
	return r, nil
}
