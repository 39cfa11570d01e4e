package api

import (
	"math"
	"time"
)

// Function is a custom-container function as fcd stores it and as
// GetFunction, ListFunctions, CreateFunction and UpdateFunction return it.
// Every field has its default filled in (see Input.Function).
type Function struct {
	FunctionName string `json:"functionName"`
	FunctionID   string `json:"functionId"`
	FunctionArn  string `json:"functionArn"`
	Description  string `json:"description"`
	Runtime      string `json:"runtime"`
	// Handler is passed to the instance in x-fc-function-handler; custom
	// containers usually ignore it.
	Handler              string            `json:"handler"`
	MemorySize           int32             `json:"memorySize"`
	CPU                  float32           `json:"cpu"`
	DiskSize             int32             `json:"diskSize"`
	Timeout              int32             `json:"timeout"`
	InstanceConcurrency  int32             `json:"instanceConcurrency"`
	EnvironmentVariables map[string]string `json:"environmentVariables"`
	// Role is the RAM role ARN the function's instances assume, or empty.
	Role                    string                   `json:"role,omitempty"`
	CustomContainerConfig   *CustomContainerConfig   `json:"customContainerConfig,omitempty"`
	InstanceLifecycleConfig *InstanceLifecycleConfig `json:"instanceLifecycleConfig,omitempty"`
	// Function options, documented in function_options.go.
	IdleTimeout              int32      `json:"idleTimeout,omitempty"`
	DisableOndemand          bool       `json:"disableOndemand"`
	DisableInjectCredentials string     `json:"disableInjectCredentials,omitempty"`
	InstanceIsolationMode    string     `json:"instanceIsolationMode,omitempty"`
	InternetAccess           *bool      `json:"internetAccess,omitempty"`
	SessionAffinity          string     `json:"sessionAffinity,omitempty"`
	SessionAffinityConfig    string     `json:"sessionAffinityConfig,omitempty"`
	CustomDNS                *CustomDNS `json:"customDNS,omitempty"`
	Tags                     []Tag      `json:"tags,omitempty"`

	State                      string `json:"state"`
	StateReason                string `json:"stateReason,omitempty"`
	StateReasonCode            string `json:"stateReasonCode,omitempty"`
	LastUpdateStatus           string `json:"lastUpdateStatus"`
	LastUpdateStatusReason     string `json:"lastUpdateStatusReason,omitempty"`
	LastUpdateStatusReasonCode string `json:"lastUpdateStatusReasonCode,omitempty"`
	CreatedTime                string `json:"createdTime"`
	LastModifiedTime           string `json:"lastModifiedTime"`

	// Revision is the store's modification counter for the function: it
	// grows on every create and update, so instances of an older
	// configuration can be told apart. It is not part of FC's API.
	Revision uint64 `json:"-"`
	// InvocationRestriction is set on GetFunction's answer while
	// invocations are disabled (DisableFunctionInvocation); it is kept in
	// a record of its own, not with the function.
	InvocationRestriction *InvocationRestriction `json:"invocationRestriction,omitempty"`

	// VersionID is set on a published version's frozen configuration
	// (versions.go): the version it is. Empty for the latest. Not
	// serialized: the scheduler keys its pools by it.
	VersionID string `json:"-"`
}

// CustomContainerConfig says which image a function runs and how.
type CustomContainerConfig struct {
	Image string `json:"image"`
	// Entrypoint replaces the image's ENTRYPOINT when non-empty.
	Entrypoint []string `json:"entrypoint"`
	// Command replaces the image's CMD when non-empty.
	Command           []string           `json:"command"`
	Port              int32              `json:"port"`
	AccelerationType  string             `json:"accelerationType"`
	AccelerationInfo  *AccelerationInfo  `json:"accelerationInfo,omitempty"`
	ResolvedImageURI  string             `json:"resolvedImageUri,omitempty"`
	HealthCheckConfig *HealthCheckConfig `json:"healthCheckConfig,omitempty"`
	// RegistryConfig holds credentials for the image's registry, used
	// instead of the role's or the host's (function_options.go).
	RegistryConfig *RegistryConfig `json:"registryConfig,omitempty"`
}

// AccelerationInfo reports the state of the image's accelerated form.
type AccelerationInfo struct {
	Status string `json:"status"`
}

// HealthCheckConfig replaces the bare TCP readiness probe with an HTTP GET,
// and keeps checking warm instances.
type HealthCheckConfig struct {
	HTTPGetURL          string `json:"httpGetUrl"`
	InitialDelaySeconds int32  `json:"initialDelaySeconds"`
	PeriodSeconds       int32  `json:"periodSeconds"`
	TimeoutSeconds      int32  `json:"timeoutSeconds"`
	FailureThreshold    int32  `json:"failureThreshold"`
	SuccessThreshold    int32  `json:"successThreshold"`
}

// InstanceLifecycleConfig holds the instance lifecycle hooks. A nil hook is
// not called.
type InstanceLifecycleConfig struct {
	Initializer *LifecycleHook `json:"initializer,omitempty"`
	PreStop     *LifecycleHook `json:"preStop,omitempty"`
}

// LifecycleHook is one lifecycle hook: the instance receives POST
// /initialize or GET /pre-stop and has Timeout seconds to answer 200.
type LifecycleHook struct {
	Handler string `json:"handler"`
	Timeout int32  `json:"timeout"`
}

// Defaults, as Function Compute applies them.
const (
	DefaultMemorySize          = 512
	DefaultDiskSize            = 512
	DefaultTimeout             = 3
	DefaultInstanceConcurrency = 1
	DefaultPort                = 9000
	DefaultHookTimeout         = 3
)

// DefaultCPU is the vCPU count given to a function that does not set cpu:
// half a vCPU per GB of memory, rounded up to the 0.05 vCPU step, which
// always lies within FC's 1:1..1:4 cpu:memory-GB band.
func DefaultCPU(memoryMB int32) float32 {
	steps := math.Ceil(float64(memoryMB) / 1024 / 2 / 0.05)
	return float32(math.Round(steps*5) / 100)
}

// Timestamp formats t as FC formats createdTime and lastModifiedTime.
func Timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// Clone returns a deep copy of f, so a caller may change it without touching
// a stored or shared value.
func (f *Function) Clone() *Function {
	if f == nil {
		return nil
	}
	c := *f
	if f.EnvironmentVariables != nil {
		c.EnvironmentVariables = make(map[string]string, len(f.EnvironmentVariables))
		for k, v := range f.EnvironmentVariables {
			c.EnvironmentVariables[k] = v
		}
	}
	if cc := f.CustomContainerConfig; cc != nil {
		n := *cc
		n.Entrypoint = append([]string(nil), cc.Entrypoint...)
		n.Command = append([]string(nil), cc.Command...)
		if cc.AccelerationInfo != nil {
			ai := *cc.AccelerationInfo
			n.AccelerationInfo = &ai
		}
		if cc.HealthCheckConfig != nil {
			hc := *cc.HealthCheckConfig
			n.HealthCheckConfig = &hc
		}
		if rc := cc.RegistryConfig; rc != nil {
			n.RegistryConfig = &RegistryConfig{}
			if rc.AuthConfig != nil {
				a := *rc.AuthConfig
				n.RegistryConfig.AuthConfig = &a
			}
		}
		c.CustomContainerConfig = &n
	}
	if lc := f.InstanceLifecycleConfig; lc != nil {
		n := InstanceLifecycleConfig{}
		if lc.Initializer != nil {
			h := *lc.Initializer
			n.Initializer = &h
		}
		if lc.PreStop != nil {
			h := *lc.PreStop
			n.PreStop = &h
		}
		c.InstanceLifecycleConfig = &n
	}
	c.cloneOptions(f)
	return &c
}

// Port returns the function's CAPort.
func (f *Function) Port() int {
	if f.CustomContainerConfig == nil || f.CustomContainerConfig.Port == 0 {
		return DefaultPort
	}
	return int(f.CustomContainerConfig.Port)
}
