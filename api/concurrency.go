package api

// ConcurrencyConfig is a function's reserved concurrency, as
// PutConcurrencyConfig, GetConcurrencyConfig and ListConcurrencyConfigs
// return it: at most ReservedConcurrency requests of the function run at
// once, over all its versions; 0 refuses every invocation.
type ConcurrencyConfig struct {
	FunctionArn         string `json:"functionArn"`
	ReservedConcurrency int64  `json:"reservedConcurrency"`
}

// PutConcurrencyInput is PutConcurrencyConfig's body.
type PutConcurrencyInput struct {
	ReservedConcurrency *int64 `json:"reservedConcurrency"`
}

// MaxReservedConcurrency bounds reservedConcurrency on one host.
const MaxReservedConcurrency = 100000

// Validate checks the body.
func (in *PutConcurrencyInput) Validate() error {
	if in.ReservedConcurrency == nil {
		return invalid("reservedConcurrency is required")
	}
	if n := *in.ReservedConcurrency; n < 0 || n > MaxReservedConcurrency {
		return invalid("reservedConcurrency %d is out of range: it must be between 0 and %d", n, MaxReservedConcurrency)
	}
	return nil
}

// InvocationRestriction is a function's invocation switch, as GetFunction
// reports it in invocationRestriction: while Disable is set every
// invocation is refused.
type InvocationRestriction struct {
	Disable          bool   `json:"disable"`
	Reason           string `json:"reason,omitempty"`
	LastModifiedTime string `json:"lastModifiedTime"`
}

// DisableInvocationInput is DisableFunctionInvocation's body.
type DisableInvocationInput struct {
	Reason              *string `json:"reason"`
	AbortOngoingRequest *bool   `json:"abortOngoingRequest"`
}
