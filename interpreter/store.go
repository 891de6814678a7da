package interpreter

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors a Store returns (wrapped or bare); callers test them with errors.Is.
var (
	// ErrNotFound: no such instance or definition.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the stored revision moved since the state was loaded.
	ErrConflict = errors.New("revision conflict")
	// ErrDuplicate: the work item was already applied (acknowledged).
	ErrDuplicate = errors.New("work item already applied")
	// ErrAlreadyRunning: an instance with that id is Pending, Running or Suspended.
	ErrAlreadyRunning = errors.New("instance already running")
	// ErrFinished: the instance is Completed, Failed or Terminated.
	ErrFinished = errors.New("instance already finished")
	// ErrInstanceFinished: the activity task was withdrawn because its
	// instance ended (or is gone): whoever holds it should stop, and its
	// outcome is not wanted.
	ErrInstanceFinished = errors.New("the task's instance has ended")
	// ErrInvalid: the caller passed something malformed (a continuation
	// token, a task token); the message says what.
	ErrInvalid = errors.New("invalid argument")
	// ErrUnavailable: the store is out of reach or cannot serve for now (a
	// lost or refused connection, a server loading its data, a cluster
	// between masters); the call may be retried later. Stores wrap such
	// failures where they arise, so callers need not know the store's
	// client to tell them from a bad request or a bug.
	ErrUnavailable = errors.New("store unavailable")
)

// WorkItem is an Event addressed to an instance, as read from a partition's
// work stream.
type WorkItem struct {
	ID        string // the store's id for acknowledging it
	Partition int
	Instance  InstanceID
	Event     Event
}

// Store is what the engine needs from durable storage. Every method is one
// round trip to the store, whatever the number of items, and returns by its
// context's deadline; a store out of reach answers ErrUnavailable.
type Store interface {
	// Partitions is the fixed number of partitions P.
	Partitions() int
	// PartitionOf is the partition that holds instance id (no round trip).
	PartitionOf(id InstanceID) int
	// ReadWork returns up to max new work items of the given partitions for
	// this consumer, waiting up to block for the first one.
	ReadWork(ctx context.Context, consumer string, partitions []int, max int, block time.Duration) ([]WorkItem, error)
	// ReclaimWork takes over work items that another consumer has held
	// unacknowledged for longer than minIdle (it died).
	ReclaimWork(ctx context.Context, consumer string, partition int, minIdle time.Duration, max int) ([]WorkItem, error)
	// LoadStates reads the states of the instances; nil for a missing one.
	LoadStates(ctx context.Context, ids []InstanceID) ([]*State, error)
	// Commit applies the transitions in order, each atomically with its
	// commands, history and the acknowledgement of its work item, guarded by
	// FromRevision. It returns one error per transition: nil, ErrConflict or
	// ErrDuplicate (nothing written), or another failure.
	Commit(ctx context.Context, ts []*Transition) ([]error, error)
	// AckWork acknowledges work items that need no transition (their
	// instance is gone, or they are stale).
	AckWork(ctx context.Context, items []WorkItem) error
	// FireDueTimers moves up to max timers due at or before now from the
	// partition's timer set into its work stream, and returns how many moved
	// and the due time of the next one left (zero when none).
	FireDueTimers(ctx context.Context, partition int, now time.Time, max int) (int, time.Time, error)
	// TrimWork drops the partition's acknowledged work items from the
	// store (commits only acknowledge them) and returns how many went.
	TrimWork(ctx context.Context, partition int) (int, error)
	// ExpireFinished deletes the partition's finished instances that the
	// store's retention setting no longer keeps, and returns how many went
	// (0 without a setting).
	ExpireFinished(ctx context.Context, partition int, now time.Time) (int, error)
	// LoadDefinition returns the YAML source stored under name and hash.
	LoadDefinition(ctx context.Context, name, hash string) ([]byte, error)

	// Call steps start, watch and stop child instances, and a child tells
	// its parent when it ends (see afterCommit): the client calls.

	// LatestDefinition returns the hash of the newest version of name.
	LatestDefinition(ctx context.Context, name string) (string, error)
	// CreateInstance writes a new instance and its start work item;
	// ErrAlreadyRunning when the id is Pending, Running or Suspended.
	CreateInstance(ctx context.Context, n NewInstance) error
	FetchStatus(ctx context.Context, id InstanceID) (*InstanceStatus, error)
	// RaiseEvent delivers an external event; ErrNotFound, ErrFinished.
	RaiseEvent(ctx context.Context, id InstanceID, name string, data json.RawMessage, now time.Time) error
	// SendControl queues a terminate, suspend or resume; ErrNotFound,
	// ErrFinished.
	SendControl(ctx context.Context, id InstanceID, ev Event) error
}

// Membership is a Store in which engines announce themselves, so that the
// others can take over the work of one that stopped (it crashed, or lost
// the store) within seconds instead of after the lease (ReclaimAfter).
// redisstore's Store is one; an engine over a Store without it relies on
// ReclaimWork alone. Each method is one round trip.
type Membership interface {
	// Heartbeat records that consumer is alive; beat grows with every
	// beat of one consumer (the engine sends its clock's unix ms, or one
	// more than the last). It reports whether consumer was not a member
	// (its first beat, or it had been taken for dead and removed).
	Heartbeat(ctx context.Context, consumer string, beat int64) (added bool, err error)
	// Members returns every announced consumer with its last beat.
	Members(ctx context.Context) (map[string]int64, error)
	// TakeOver moves to taker up to max of dead's pending work items per
	// partition (taker now holds them, as if it had just read them) and
	// hands dead's leased tasks of the local queue to whichever activity
	// runtime reclaims next, whatever their idle time, and returns the
	// items and how many tasks moved. done reports that dead holds nothing
	// more: it has been removed from every consumer group. Items may come
	// with an error (a part of the store failed): they are taker's all
	// the same.
	TakeOver(ctx context.Context, dead, taker string, max int) (items []WorkItem, tasks int, done bool, err error)
	// Forget removes consumer from the members (it left, or all it held was
	// taken over) and reports whether it was one.
	Forget(ctx context.Context, consumer string) (bool, error)
}

// NewInstance is what starting an instance writes.
type NewInstance struct {
	State *State // status Pending, revision 0
	Start Event  // the EvStart work item
	// First, when set, is Start's transition of State, computed on the way
	// in (Engine.CreateInstance): the store writes the instance as First
	// leaves it, with First's tasks, timers and history, and no start work
	// item, atomically, and sets First.State.Revision to 1. A store may
	// ignore it and write the start item: an engine then steps it.
	First *Transition
}

// InstanceStatus is everything GET status shows, read in one round trip.
type InstanceStatus struct {
	ID              InstanceID
	Name            string
	DefHash         string
	Status          RuntimeStatus
	Input           json.RawMessage // nil = null
	Output          json.RawMessage
	CustomStatus    json.RawMessage
	CreatedTime     time.Time
	LastUpdatedTime time.Time
	Pending         *Pending // what it waits for, if blocked
	Revision        int64
}

// ListQuery filters and pages a listing of instances. Order is by created
// time, then id, ascending.
type ListQuery struct {
	Statuses          []RuntimeStatus // empty = all
	CreatedFrom       time.Time       // zero = unbounded
	CreatedTo         time.Time       // zero = unbounded
	Prefix            string
	Workflow          string // exact workflow name; "" = all
	Top               int    // page size
	ContinuationToken string // from the previous page; "" = first page
	WithInput         bool
}

// DefinitionInfo describes one stored workflow definition (the API's JSON
// of it is httpapi's).
type DefinitionInfo struct {
	Name     string
	Latest   string // hash of the newest version
	Versions []Version
}

// Version is one stored content version of a workflow.
type Version struct {
	Hash    string
	Created time.Time
}

// StatusChange is a notice that an instance's runtime or custom status
// changed, published by the commit that changed it.
type StatusChange struct {
	Instance     InstanceID      `json:"instanceId"`
	Status       RuntimeStatus   `json:"runtimeStatus"`
	CustomStatus json.RawMessage `json:"customStatus"`
	Output       json.RawMessage `json:"output,omitempty"`
	Revision     int64           `json:"revision"`
	Time         time.Time       `json:"lastUpdatedTime"`
}
