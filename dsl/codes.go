package dsl

// Issue codes. They are stable: editors, CI scripts and the golden tests
// match on them, so a code is never renamed or reused for another mistake.
const (
	// The file as a whole.
	CodeSourceTooLarge = "source-too-large" // over MaxSourceBytes
	CodeYAMLSyntax     = "yaml-syntax"      // the YAML parser rejected the text
	CodeYAMLDocuments  = "yaml-documents"   // empty file or more than one YAML document
	CodeYAMLTooDeep    = "yaml-too-deep"    // collections nested deeper than maxDepth
	CodeYAMLAliases    = "yaml-aliases"     // aliases expand to too many nodes (a YAML bomb)
	CodeDuplicateKey   = "duplicate-key"    // a mapping repeats a key
	CodeYAMLKey        = "yaml-key"         // a mapping key that is not a plain string
	CodeYAMLMerge      = "yaml-merge"       // merge keys (<<) are not supported
	CodeYAMLTag        = "yaml-tag"         // a YAML tag cairn does not understand
	CodeNotJSON        = "not-json"         // a value JSON cannot represent (.nan, .inf)
	CodeTooMany        = "too-many"         // over MaxSteps, MaxVariables, MaxExpressions or the issue limit

	// Structure.
	CodeTypeMismatch   = "type-mismatch"   // a field holds the wrong kind of YAML value
	CodeMissingField   = "missing-field"   // a required field is absent
	CodeUnknownField   = "unknown-field"   // a field that does not exist where it is written
	CodeInvalidName    = "invalid-name"    // workflow, activity or event name with bad characters
	CodeEmptySteps     = "empty-steps"     // the workflow has no steps
	CodeInvalidStepID  = "invalid-step-id" // an id that does not match [A-Za-z][A-Za-z0-9_.-]*
	CodeDuplicateID    = "duplicate-step-id"
	CodeUnknownKind    = "unknown-step-kind"
	CodeUnsupported    = "unsupported-step"    // a kind reserved for a later version (none is today)
	CodeMultipleKinds  = "multiple-step-kinds" // two kinds in one step
	CodeMissingKind    = "missing-step-kind"   // a step with no kind at all
	CodeUnreachable    = "unreachable-step"    // a step after an unconditional return or fail
	CodeEmptySwitch    = "empty-switch"
	CodeDefaultNotLast = "default-not-last"
	CodeSwitchCase     = "invalid-case" // a case that is neither {when, steps} nor {default}
	CodeWaitKind       = "wait-kind"    // wait with neither event nor duration/until, or with both
	CodeDuration       = "invalid-duration"
	CodeTime           = "invalid-time"
	CodeVariableName   = "invalid-variable" // a result/set name that is not an identifier or is reserved
	CodeEmptySet       = "empty-set"
	CodeStatusTooLarge = "status-too-large"
	CodeStatusSchema   = "status-schema" // a literal status that the `status` schema rejects
	CodeJSONSchema     = "invalid-json-schema"
	CodeOptionRange    = "option-out-of-range" // activity timeout/retry values out of range
	CodeBinding        = "invalid-binding"
	CodeInBranch       = "not-in-branch"  // return or continueAsNew inside a parallel branch or forEach body
	CodeEmptyParallel  = "empty-parallel" // a parallel step without branches
	CodeInProgress     = "not-in-onitem"  // a step other than set, setStatus, switch or fail in onItem or onBranch

	// Schedules.
	CodeCron              = "invalid-cron"       // a cron expression that does not parse
	CodeTimezone          = "invalid-timezone"   // not an IANA time zone name
	CodeSchedule          = "invalid-schedule"   // a bad overlap, cron together with every, ...
	CodeDuplicateSchedule = "duplicate-schedule" // two schedules with one id

	// Expressions.
	CodeExprSyntax      = "expr-syntax"
	CodeExprUnknown     = "expr-unknown-name"     // unknown identifier or a variable not set on the way
	CodeExprFunction    = "expr-unknown-function" // a call to a function that does not exist
	CodeExprField       = "expr-unknown-field"    // e.g. instance.idd
	CodeExprNotBool     = "expr-not-bool"         // a when/if that cannot yield a boolean
	CodeExprType        = "expr-type"             // other type errors found at load
	CodeExprEmpty       = "expr-empty"            // ${ } with nothing inside
	CodeExprUnclosed    = "expr-unterminated"     // ${ without its closing }
	CodeExprTooComplex  = "expr-too-complex"      // more than MaxExprNodes nodes
	CodeSchemaViolation = "schema"                // reported by the JSON Schema (schema.Lint)
)
