package api

// ProvisionConfig is a function's provisioned (always warm) instance target.
type ProvisionConfig struct {
	Target int `json:"target"`
}

// NamedProvisionConfig is a function's provisioned target with its name.
type NamedProvisionConfig struct {
	Function string
	ProvisionConfig
}

// Op is what an Event did.
type Op int

const (
	// OpPut created or replaced the record.
	OpPut Op = iota + 1
	// OpDelete removed it. Deleting a function removes its triggers and
	// provision config with it, in the same revision, without events of
	// their own.
	OpDelete
)

// Kind is the kind of record an Event changed.
type Kind int

const (
	KindFunction Kind = iota + 1
	KindTrigger
	KindProvision
	// Versioning and invocation control (version.go, alias.go,
	// concurrency.go): Qualifier names the version or alias.
	KindVersion
	KindAlias
	KindConcurrency
	KindRestriction
	// KindQualifiedProvision is the provision config of a version or an
	// alias (Qualifier); ProvisionValue on OpPut.
	KindQualifiedProvision
	// KindCustomDomain changes a custom domain (DomainName); it belongs to
	// no function.
	KindCustomDomain
)

// Event is one change to fcd's metadata, as a store's Watch delivers it.
// Revisions are the store's: every committed write takes the next one, so
// events arrive in strictly increasing Revision order.
type Event struct {
	Revision uint64
	Op       Op
	Kind     Kind
	// Function names the function the record belongs to.
	Function string
	// TriggerName names the trigger, for KindTrigger.
	TriggerName string
	// DomainName names the custom domain, for KindCustomDomain.
	DomainName string
	// The record as written, on OpPut, for its Kind; nil otherwise.
	FunctionValue  *Function
	TriggerValue   *Trigger
	ProvisionValue *ProvisionConfig
	// Qualifier is the version id (KindVersion) or alias name (KindAlias),
	// or either (KindQualifiedProvision).
	Qualifier        string
	AliasValue       *Alias
	ConcurrencyValue *ConcurrencyConfig
	RestrictionValue *InvocationRestriction
}
