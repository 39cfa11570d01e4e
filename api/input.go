package api

import (
	"fmt"
	"time"

	"github.com/containerd/errdefs"
)

// Input is the body of CreateFunction and UpdateFunction. A nil field is
// absent: CreateFunction gives it its default, UpdateFunction leaves it
// unchanged. The SDKs send absent maps and lists as JSON null, which decodes
// to nil, while an explicit {} or [] decodes to an empty, non-nil value that
// clears the field.
type Input struct {
	FunctionName             *string                  `json:"functionName"`
	Description              *string                  `json:"description"`
	Runtime                  *string                  `json:"runtime"`
	Handler                  *string                  `json:"handler"`
	MemorySize               *int32                   `json:"memorySize"`
	CPU                      *float32                 `json:"cpu"`
	DiskSize                 *int32                   `json:"diskSize"`
	Timeout                  *int32                   `json:"timeout"`
	InstanceConcurrency      *int32                   `json:"instanceConcurrency"`
	EnvironmentVariables     map[string]string        `json:"environmentVariables"`
	Role                     *string                  `json:"role"`
	CustomContainerConfig    *ContainerInput          `json:"customContainerConfig"`
	InstanceLifecycleConfig  *InstanceLifecycleConfig `json:"instanceLifecycleConfig"`
	IdleTimeout              *int32                   `json:"idleTimeout"`
	DisableOndemand          *bool                    `json:"disableOndemand"`
	DisableInjectCredentials *string                  `json:"disableInjectCredentials"`
	InstanceIsolationMode    *string                  `json:"instanceIsolationMode"`
	InternetAccess           *bool                    `json:"internetAccess"`
	SessionAffinity          *string                  `json:"sessionAffinity"`
	SessionAffinityConfig    *string                  `json:"sessionAffinityConfig"`
	CustomDNS                *CustomDNS               `json:"customDNS"`
	// Tags are set by CreateFunction only; TagResources changes them.
	Tags []Tag `json:"tags"`
}

// ContainerInput is customContainerConfig in an Input. Server-owned fields
// (accelerationInfo, resolvedImageUri) are ignored when sent.
type ContainerInput struct {
	Image             *string            `json:"image"`
	Entrypoint        []string           `json:"entrypoint"`
	Command           []string           `json:"command"`
	Port              *int32             `json:"port"`
	AccelerationType  *string            `json:"accelerationType"`
	HealthCheckConfig *HealthCheckConfig `json:"healthCheckConfig"`
	RegistryConfig    *RegistryConfig    `json:"registryConfig"`
}

// NewFunction builds the function that CreateFunction stores from in: fields
// absent from in get their defaults, server-owned fields are set (id, ARN,
// state, times), and the result is validated. region and account name the
// ARN. Errors wrap errdefs.ErrInvalidArgument.
func NewFunction(in *Input, id, region, account string, now time.Time) (*Function, error) {
	if in.FunctionName == nil || *in.FunctionName == "" {
		return nil, invalid("functionName is required")
	}
	if in.Runtime == nil || *in.Runtime == "" {
		return nil, invalid("runtime is required; fcd supports %q", RuntimeCustomContainer)
	}
	if in.CustomContainerConfig == nil || in.CustomContainerConfig.Image == nil {
		return nil, invalid("customContainerConfig.image is required for runtime %q", RuntimeCustomContainer)
	}
	f := &Function{
		FunctionName:     *in.FunctionName,
		FunctionID:       id,
		FunctionArn:      fmt.Sprintf("acs:fc:%s:%s:functions/%s", region, account, *in.FunctionName),
		CreatedTime:      Timestamp(now),
		LastModifiedTime: Timestamp(now),
	}
	if err := f.apply(in); err != nil {
		return nil, err
	}
	return f, nil
}

// Update returns a copy of f with the fields present in in changed,
// defaults re-derived where they depend on a changed field, and validated.
// The function's name cannot change. Errors wrap errdefs.ErrInvalidArgument.
func (f *Function) Update(in *Input, now time.Time) (*Function, error) {
	if in.FunctionName != nil && *in.FunctionName != f.FunctionName {
		return nil, invalid("functionName cannot be changed (function %q, body says %q)", f.FunctionName, *in.FunctionName)
	}
	n := f.Clone()
	if in.MemorySize != nil && in.CPU == nil && n.CPU == DefaultCPU(n.MemorySize) {
		// The cpu was derived from the old memory size; derive it again.
		n.CPU = 0
	}
	if err := n.apply(in); err != nil {
		return nil, err
	}
	n.LastModifiedTime = Timestamp(now)
	return n, nil
}

// apply sets the fields present in in, fills defaults and validates.
func (f *Function) apply(in *Input) error {
	setString(&f.Description, in.Description)
	setString(&f.Runtime, in.Runtime)
	setString(&f.Handler, in.Handler)
	setInt32(&f.MemorySize, in.MemorySize)
	setInt32(&f.DiskSize, in.DiskSize)
	setInt32(&f.Timeout, in.Timeout)
	setInt32(&f.InstanceConcurrency, in.InstanceConcurrency)
	setString(&f.Role, in.Role)
	if in.CPU != nil {
		f.CPU = *in.CPU
	}
	if in.EnvironmentVariables != nil {
		f.EnvironmentVariables = in.EnvironmentVariables
	}
	if in.InstanceLifecycleConfig != nil {
		f.InstanceLifecycleConfig = in.InstanceLifecycleConfig
	}
	if ci := in.CustomContainerConfig; ci != nil {
		if f.CustomContainerConfig == nil {
			f.CustomContainerConfig = &CustomContainerConfig{}
		}
		cc := f.CustomContainerConfig
		setString(&cc.Image, ci.Image)
		setString(&cc.AccelerationType, ci.AccelerationType)
		setInt32(&cc.Port, ci.Port)
		if ci.Entrypoint != nil {
			cc.Entrypoint = ci.Entrypoint
		}
		if ci.Command != nil {
			cc.Command = ci.Command
		}
		if ci.HealthCheckConfig != nil {
			cc.HealthCheckConfig = ci.HealthCheckConfig
		}
		if ci.RegistryConfig != nil {
			cc.RegistryConfig = ci.RegistryConfig
			if ci.RegistryConfig.AuthConfig.empty() {
				cc.RegistryConfig = nil // {} clears it
			}
		}
	}
	f.applyOptions(in)
	f.setDefaults()
	return f.Validate()
}

func (f *Function) setDefaults() {
	if f.MemorySize == 0 {
		f.MemorySize = DefaultMemorySize
	}
	if f.CPU == 0 {
		f.CPU = DefaultCPU(f.MemorySize)
	}
	if f.DiskSize == 0 {
		f.DiskSize = DefaultDiskSize
	}
	if f.Timeout == 0 {
		f.Timeout = DefaultTimeout
	}
	if f.InstanceConcurrency == 0 {
		f.InstanceConcurrency = DefaultInstanceConcurrency
	}
	if f.EnvironmentVariables == nil {
		f.EnvironmentVariables = map[string]string{}
	}
	if cc := f.CustomContainerConfig; cc != nil {
		if cc.Port == 0 {
			cc.Port = DefaultPort
		}
		if cc.AccelerationType == "" {
			cc.AccelerationType = AccelerationDefault
		}
		if hc := cc.HealthCheckConfig; hc != nil {
			hc.setDefaults()
		}
	}
	if lc := f.InstanceLifecycleConfig; lc != nil {
		for _, h := range []*LifecycleHook{lc.Initializer, lc.PreStop} {
			if h != nil && h.Timeout == 0 {
				h.Timeout = DefaultHookTimeout
			}
		}
	}
	f.setOptionDefaults()
	if f.State == "" {
		f.State = StateActive
	}
	if f.LastUpdateStatus == "" {
		f.LastUpdateStatus = UpdateSuccessful
	}
}

func (hc *HealthCheckConfig) setDefaults() {
	if hc.PeriodSeconds == 0 {
		hc.PeriodSeconds = 3
	}
	if hc.TimeoutSeconds == 0 {
		hc.TimeoutSeconds = 1
	}
	if hc.FailureThreshold == 0 {
		hc.FailureThreshold = 3
	}
	if hc.SuccessThreshold == 0 {
		hc.SuccessThreshold = 1
	}
}

func setString(dst *string, src *string) {
	if src != nil {
		*dst = *src
	}
}

func setInt32(dst *int32, src *int32) {
	if src != nil {
		*dst = *src
	}
}

// InvalidError is a request that breaks one of FC's rules. Its message is
// meant for the caller as it stands; errors.Is(err, errdefs.ErrInvalidArgument)
// holds for it.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// Is reports that an InvalidError is an errdefs.ErrInvalidArgument.
func (e *InvalidError) Is(target error) bool { return target == errdefs.ErrInvalidArgument }

func invalid(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}
