package interpreter

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
