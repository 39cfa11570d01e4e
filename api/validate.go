package api

import (
	"math"
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// Limits from Function Compute.
const (
	MinMemorySize          = 128
	MaxMemorySize          = 32768
	MemorySizeStep         = 64
	MaxTimeout             = 86400
	MaxInstanceConcurrency = 200
	MaxEnvironmentBytes    = 4096
	MaxDescriptionLength   = 256
	MaxCPU                 = 16
	// DiskSizeLarge is the only disk size besides DefaultDiskSize.
	DiskSizeLarge = 10240
)

var (
	functionNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,63}$`)
	envKeyRE       = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	roleRE         = regexp.MustCompile(`^acs:ram::[0-9A-Za-z_-]*:role/[A-Za-z0-9._-]{1,64}$`)
)

// ValidateFunctionName checks FC's rule for function names: letters, digits,
// underscores and hyphens, 1 to 64 characters, not starting with a digit or
// a hyphen.
func ValidateFunctionName(name string) error {
	if !functionNameRE.MatchString(name) {
		return invalid("functionName %q is invalid: use 1-64 letters, digits, '_' or '-', not starting with a digit or '-'", name)
	}
	return nil
}

// Validate checks f against FC's rules. Errors are *InvalidError.
func (f *Function) Validate() error {
	if err := ValidateFunctionName(f.FunctionName); err != nil {
		return err
	}
	if f.Runtime != RuntimeCustomContainer {
		return invalid("runtime %q is not supported: fcd runs only %q functions", f.Runtime, RuntimeCustomContainer)
	}
	if len(f.Description) > MaxDescriptionLength {
		return invalid("description is %d characters long, at most %d are allowed", len(f.Description), MaxDescriptionLength)
	}
	if f.MemorySize < MinMemorySize || f.MemorySize > MaxMemorySize || f.MemorySize%MemorySizeStep != 0 {
		return invalid("memorySize %d is invalid: it must be between %d and %d MB and a multiple of %d", f.MemorySize, MinMemorySize, MaxMemorySize, MemorySizeStep)
	}
	if err := validateCPU(f.CPU, f.MemorySize); err != nil {
		return err
	}
	if f.DiskSize != DefaultDiskSize && f.DiskSize != DiskSizeLarge {
		return invalid("diskSize %d is invalid: it must be %d or %d (MB)", f.DiskSize, DefaultDiskSize, DiskSizeLarge)
	}
	if f.Timeout < 1 || f.Timeout > MaxTimeout {
		return invalid("timeout %d is invalid: it must be between 1 and %d seconds", f.Timeout, MaxTimeout)
	}
	if f.InstanceConcurrency < 1 || f.InstanceConcurrency > MaxInstanceConcurrency {
		return invalid("instanceConcurrency %d is invalid: it must be between 1 and %d", f.InstanceConcurrency, MaxInstanceConcurrency)
	}
	if f.Role != "" && (!roleRE.MatchString(f.Role) || strings.HasSuffix(f.Role, "/.") || strings.HasSuffix(f.Role, "/..")) {
		return invalid("role %q is invalid: expected acs:ram::<account>:role/<name>", f.Role)
	}
	if err := ValidateEnvironment(f.EnvironmentVariables); err != nil {
		return err
	}
	if f.CustomContainerConfig == nil {
		return invalid("customContainerConfig is required for runtime %q", RuntimeCustomContainer)
	}
	if err := f.CustomContainerConfig.validate(); err != nil {
		return err
	}
	if err := f.validateOptions(); err != nil {
		return err
	}
	if lc := f.InstanceLifecycleConfig; lc != nil {
		if err := lc.Initializer.validate("initializer", 600); err != nil {
			return err
		}
		if err := lc.PreStop.validate("preStop", 90); err != nil {
			return err
		}
	}
	return nil
}

func validateCPU(cpu float32, memoryMB int32) error {
	steps := float64(cpu) / 0.05
	if cpu <= 0 || cpu > MaxCPU || math.Abs(steps-math.Round(steps)) > 1e-3 {
		return invalid("cpu %g is invalid: it must be a multiple of 0.05 between 0.05 and %d vCPU", cpu, MaxCPU)
	}
	gb := float64(memoryMB) / 1024
	ratio := float64(cpu) / gb
	if ratio > 1+1e-6 || ratio < 0.25-1e-6 {
		return invalid("cpu %g with memorySize %d is invalid: cpu (vCPU) to memory (GB) must be between 1:1 and 1:4", cpu, memoryMB)
	}
	return nil
}

// ValidateEnvironment checks user environment variables: names start with a
// letter and hold letters, digits and '_'; FC_ names are reserved; values
// hold no NUL byte; all names and values together are at most 4 KB.
func ValidateEnvironment(env map[string]string) error {
	size := 0
	for k, v := range env {
		if !envKeyRE.MatchString(k) {
			return invalid("environment variable name %q is invalid: it must start with a letter and contain only letters, digits and '_'", k)
		}
		if strings.HasPrefix(strings.ToUpper(k), "FC_") {
			return invalid("environment variable name %q is reserved: names starting with FC_ belong to the runtime", k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			// execve takes NUL-terminated strings: such a value cannot
			// reach the process, and would fail every start.
			return invalid("environment variable %q: its value contains a NUL byte", k)
		}
		size += len(k) + len(v)
	}
	if size > MaxEnvironmentBytes {
		return invalid("environment variables take %d bytes, at most %d are allowed", size, MaxEnvironmentBytes)
	}
	return nil
}

func (cc *CustomContainerConfig) validate() error {
	if cc.Image == "" {
		return invalid("customContainerConfig.image is required")
	}
	if _, err := reference.ParseDockerRef(cc.Image); err != nil {
		return invalid("customContainerConfig.image %q is not a valid image reference: %v", cc.Image, err)
	}
	if cc.Port < 1 || cc.Port > 65535 {
		return invalid("customContainerConfig.port %d is invalid: it must be between 1 and 65535", cc.Port)
	}
	switch cc.AccelerationType {
	case AccelerationDefault, AccelerationNone:
	default:
		return invalid("customContainerConfig.accelerationType %q is invalid: use %q or %q", cc.AccelerationType, AccelerationDefault, AccelerationNone)
	}
	if hc := cc.HealthCheckConfig; hc != nil {
		if err := hc.validate(); err != nil {
			return err
		}
	}
	return cc.RegistryConfig.validate()
}

func (hc *HealthCheckConfig) validate() error {
	if hc.HTTPGetURL == "" || !strings.HasPrefix(hc.HTTPGetURL, "/") {
		return invalid("healthCheckConfig.httpGetUrl %q is invalid: it must be a path starting with '/'", hc.HTTPGetURL)
	}
	for _, r := range []struct {
		name     string
		v        int32
		min, max int32
	}{
		{"initialDelaySeconds", hc.InitialDelaySeconds, 0, 120},
		{"periodSeconds", hc.PeriodSeconds, 1, 120},
		{"timeoutSeconds", hc.TimeoutSeconds, 1, 3},
		{"failureThreshold", hc.FailureThreshold, 1, 120},
		{"successThreshold", hc.SuccessThreshold, 1, 120},
	} {
		if r.v < r.min || r.v > r.max {
			return invalid("healthCheckConfig.%s %d is invalid: it must be between %d and %d", r.name, r.v, r.min, r.max)
		}
	}
	return nil
}

func (h *LifecycleHook) validate(name string, maxTimeout int32) error {
	if h == nil {
		return nil
	}
	if h.Timeout < 1 || h.Timeout > maxTimeout {
		return invalid("instanceLifecycleConfig.%s.timeout %d is invalid: it must be between 1 and %d seconds", name, h.Timeout, maxTimeout)
	}
	return nil
}
