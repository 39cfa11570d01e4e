package api

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

func ptr[T any](v T) *T { return &v }

func validInput() *Input {
	return &Input{
		FunctionName:          ptr("echo"),
		Runtime:               ptr(RuntimeCustomContainer),
		CustomContainerConfig: &ContainerInput{Image: ptr("127.0.0.1:5000/examples/echo:latest")},
	}
}

func TestNewFunctionDefaults(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f, err := NewFunction(validInput(), "id-1", "local", "123", now)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"memorySize", f.MemorySize, int32(DefaultMemorySize)},
		{"cpu", f.CPU, float32(0.25)},
		{"diskSize", f.DiskSize, int32(DefaultDiskSize)},
		{"timeout", f.Timeout, int32(DefaultTimeout)},
		{"instanceConcurrency", f.InstanceConcurrency, int32(1)},
		{"port", f.CustomContainerConfig.Port, int32(DefaultPort)},
		{"accelerationType", f.CustomContainerConfig.AccelerationType, AccelerationDefault},
		{"arn", f.FunctionArn, "acs:fc:local:123:functions/echo"},
		{"createdTime", f.CreatedTime, "2026-01-02T03:04:05Z"},
		{"state", f.State, StateActive},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestValidationRules(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Input)
		want   string // substring of the message; "" means valid
	}{
		{"valid", func(*Input) {}, ""},
		{"name with digit first", func(in *Input) { in.FunctionName = ptr("1abc") }, "functionName"},
		{"name with hyphen first", func(in *Input) { in.FunctionName = ptr("-abc") }, "functionName"},
		{"name too long", func(in *Input) { in.FunctionName = ptr(strings.Repeat("a", 65)) }, "functionName"},
		{"name 64 chars", func(in *Input) { in.FunctionName = ptr(strings.Repeat("a", 64)) }, ""},
		{"name with dot", func(in *Input) { in.FunctionName = ptr("a.b") }, "functionName"},
		{"runtime python", func(in *Input) { in.Runtime = ptr("python3.10") }, "not supported"},
		{"no runtime", func(in *Input) { in.Runtime = nil }, "runtime is required"},
		{"no image", func(in *Input) { in.CustomContainerConfig = nil }, "image is required"},
		{"bad image", func(in *Input) { in.CustomContainerConfig.Image = ptr("UPPER:://x") }, "not a valid image reference"},
		{"memory too small", func(in *Input) { in.MemorySize = ptr(int32(64)) }, "memorySize 64"},
		{"memory not multiple", func(in *Input) { in.MemorySize = ptr(int32(200)) }, "multiple of 64"},
		{"memory too big", func(in *Input) { in.MemorySize = ptr(int32(32832)) }, "memorySize"},
		{"memory max", func(in *Input) { in.MemorySize = ptr(int32(32768)) }, ""},
		{"cpu ratio too high", func(in *Input) { in.MemorySize = ptr(int32(1024)); in.CPU = ptr(float32(2)) }, "1:1 and 1:4"},
		{"cpu ratio too low", func(in *Input) { in.MemorySize = ptr(int32(4096)); in.CPU = ptr(float32(0.5)) }, "1:1 and 1:4"},
		{"cpu step", func(in *Input) { in.MemorySize = ptr(int32(1024)); in.CPU = ptr(float32(0.33)) }, "multiple of 0.05"},
		{"cpu ok", func(in *Input) { in.MemorySize = ptr(int32(1024)); in.CPU = ptr(float32(0.35)) }, ""},
		{"disk 1024", func(in *Input) { in.DiskSize = ptr(int32(1024)) }, "diskSize"},
		{"disk 10240", func(in *Input) { in.DiskSize = ptr(int32(10240)) }, ""},
		{"timeout 0 is default", func(in *Input) { in.Timeout = ptr(int32(0)) }, ""},
		{"timeout negative", func(in *Input) { in.Timeout = ptr(int32(-1)) }, "timeout"},
		{"timeout too big", func(in *Input) { in.Timeout = ptr(int32(86401)) }, "timeout"},
		{"concurrency 201", func(in *Input) { in.InstanceConcurrency = ptr(int32(201)) }, "instanceConcurrency"},
		{"port 70000", func(in *Input) { in.CustomContainerConfig.Port = ptr(int32(70000)) }, "port"},
		{"acceleration bogus", func(in *Input) { in.CustomContainerConfig.AccelerationType = ptr("Fast") }, "accelerationType"},
		{"env bad key", func(in *Input) { in.EnvironmentVariables = map[string]string{"1A": "x"} }, "environment variable name"},
		{"env reserved", func(in *Input) { in.EnvironmentVariables = map[string]string{"FC_X": "x"} }, "reserved"},
		{"env too big", func(in *Input) { in.EnvironmentVariables = map[string]string{"A": strings.Repeat("x", 4096)} }, "4096"},
		{"env NUL in value", func(in *Input) { in.EnvironmentVariables = map[string]string{"A": "x\x00y"} }, "NUL"},
		{"env ok", func(in *Input) { in.EnvironmentVariables = map[string]string{"A_1": "x"} }, ""},
		{"role bad", func(in *Input) { in.Role = ptr("admin") }, "role"},
		{"role dot-dot", func(in *Input) { in.Role = ptr("acs:ram::123:role/..") }, "role"},
		{"role ok", func(in *Input) { in.Role = ptr("acs:ram::123:role/puller") }, ""},
		{"health check bad url", func(in *Input) {
			in.CustomContainerConfig.HealthCheckConfig = &HealthCheckConfig{HTTPGetURL: "health"}
		}, "httpGetUrl"},
		{"health check timeout", func(in *Input) {
			in.CustomContainerConfig.HealthCheckConfig = &HealthCheckConfig{HTTPGetURL: "/h", TimeoutSeconds: 9}
		}, "timeoutSeconds"},
		{"initializer timeout", func(in *Input) {
			in.InstanceLifecycleConfig = &InstanceLifecycleConfig{Initializer: &LifecycleHook{Handler: "x", Timeout: 601}}
		}, "initializer.timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := validInput()
			tc.mutate(in)
			_, err := NewFunction(in, "id", "r", "a", time.Now())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !errdefs.IsInvalidArgument(err) {
				t.Fatalf("got %T, want an invalid-argument error", err)
			}
		})
	}
}

func TestUpdateIsPartial(t *testing.T) {
	in := validInput()
	in.EnvironmentVariables = map[string]string{"A": "1"}
	in.CustomContainerConfig.Command = []string{"/echo", "-v"}
	f, err := NewFunction(in, "id", "r", "a", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	u, err := f.Update(&Input{MemorySize: ptr(int32(2048))}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if u.MemorySize != 2048 || u.CPU != 1 {
		t.Errorf("got memory %d cpu %g, want 2048 and a re-derived cpu 1", u.MemorySize, u.CPU)
	}
	if u.EnvironmentVariables["A"] != "1" || len(u.CustomContainerConfig.Command) != 2 {
		t.Errorf("absent fields changed: %+v", u)
	}
	if f.MemorySize != 512 {
		t.Errorf("Update changed its receiver: memory %d", f.MemorySize)
	}
	u, err = u.Update(&Input{EnvironmentVariables: map[string]string{}, CustomContainerConfig: &ContainerInput{Command: []string{}}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(u.EnvironmentVariables) != 0 || len(u.CustomContainerConfig.Command) != 0 {
		t.Errorf("explicit empty values did not clear: %+v", u)
	}
	if _, err := u.Update(&Input{FunctionName: ptr("other")}, time.Now()); !errdefs.IsInvalidArgument(err) {
		t.Errorf("rename: got %v, want invalid argument", err)
	}
	if _, err := u.Update(&Input{Timeout: ptr(int32(-5))}, time.Now()); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad timeout: got %v, want invalid argument", err)
	}
}

func TestDefaultCPUWithinBand(t *testing.T) {
	for m := int32(MinMemorySize); m <= MaxMemorySize; m += MemorySizeStep {
		if err := validateCPU(DefaultCPU(m), m); err != nil {
			t.Fatalf("memory %d: %v", m, err)
		}
	}
}
