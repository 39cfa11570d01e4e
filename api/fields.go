package api

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// Nothing a caller sends is accepted and dropped. Every field of FC's
// CreateFunctionInput and UpdateFunctionInput (as the official SDK
// fc-20230330/v4 models them) is either honoured — decoded into Input and
// applied — or refused with InvalidArgument naming it, unless its value is
// empty: the SDKs send absent lists and maps as null, and a tool that
// echoes GetFunction back sends empty objects, which ask for nothing.
//
// functionFields is that decision, field by field. A key it does not list
// is refused the same way when its value is not empty.

// field is how fcd treats one request field.
type field struct {
	// sub, when non-nil, is the schema of an honoured object's members.
	sub map[string]field
	// refused, when set, says why a non-empty value is refused.
	refused string
	// ignored marks a server-owned output field that FC ignores on input
	// too (the SDKs model it on the shared type).
	ignored bool
}

var honoured = field{}

func refused(why string) field { return field{refused: why} }

const (
	notHere   = "fcd runs custom containers on one host and does not implement it"
	noCode    = "fcd runs custom-container functions only, which have no code package"
	noCloud   = "it configures an Alibaba Cloud service that a self-hosted fcd does not have"
	noNetwork = "instances run on fcd's own bridge network"
)

var lifecycleHookFields = map[string]field{
	"handler": honoured,
	"timeout": honoured,
	"command": refused("fcd calls lifecycle hooks over HTTP (POST /initialize, GET /pre-stop) and does not run hook commands"),
}

var functionFields = map[string]field{
	"functionName":             honoured,
	"description":              honoured,
	"runtime":                  honoured,
	"handler":                  honoured,
	"memorySize":               honoured,
	"cpu":                      honoured,
	"diskSize":                 honoured,
	"timeout":                  honoured,
	"instanceConcurrency":      honoured,
	"environmentVariables":     honoured,
	"role":                     honoured,
	"idleTimeout":              honoured,
	"disableOndemand":          honoured,
	"disableInjectCredentials": honoured,
	"instanceIsolationMode":    honoured, // SHARE only; see validate
	"internetAccess":           honoured, // false: instance.Spec.Offline
	"sessionAffinity":          honoured, // NONE or HEADER_FIELD; see validate
	"sessionAffinityConfig":    honoured, // its members: sessionConfigFields
	"tags":                     honoured,
	"customDNS": {sub: map[string]field{
		"nameServers": honoured,
		"searches":    honoured,
		"dnsOptions":  honoured,
	}},
	"customContainerConfig": {sub: map[string]field{
		"image":             honoured,
		"entrypoint":        honoured,
		"command":           honoured,
		"port":              honoured,
		"accelerationType":  honoured,
		"healthCheckConfig": honoured,
		"accelerationInfo":  {ignored: true},
		"resolvedImageUri":  {ignored: true},
		"acrInstanceId":     refused(noCloud + " (Container Registry Enterprise Edition)"),
		"registryConfig": {sub: map[string]field{
			"authConfig":    honoured,
			"certConfig":    refused("fcd trusts the host's CA certificates; per-function certificates and insecure registries are " + notHere),
			"networkConfig": refused(noNetwork + ", not in a VPC"),
		}},
	}},
	"instanceLifecycleConfig": {sub: map[string]field{
		"initializer": {sub: lifecycleHookFields},
		"preStop":     {sub: lifecycleHookFields},
	}},
	"code":                refused(noCode),
	"customRuntimeConfig": refused(noCode),
	"layers":              refused(noCode),
	"enableLongLiving":    refused(notHere),
	"gpuConfig":           refused("fcd runs no GPU instances"),
	"logConfig":           refused(noCloud + " (Simple Log Service); fcd keeps instance logs itself (fcctl logs)"),
	"tracingConfig":       refused(noCloud + " (Tracing Analysis)"),
	"nasConfig":           refused(noCloud + " (NAS)"),
	"ossMountConfig":      refused(noCloud + " (OSS)"),
	"polarFsConfig":       refused(noCloud + " (PolarFS)"),
	"vpcConfig":           refused(noNetwork + ", not in a VPC"),
	"resourceGroupId":     refused(noCloud + " (resource groups)"),

	// Server-owned fields of GetFunction's answer, ignored as FC ignores
	// them, so a tool may send back what it read.
	"functionArn":                {ignored: true},
	"functionId":                 {ignored: true},
	"createdTime":                {ignored: true},
	"lastModifiedTime":           {ignored: true},
	"state":                      {ignored: true},
	"stateReason":                {ignored: true},
	"stateReasonCode":            {ignored: true},
	"lastUpdateStatus":           {ignored: true},
	"lastUpdateStatusReason":     {ignored: true},
	"lastUpdateStatusReasonCode": {ignored: true},
	"codeChecksum":               {ignored: true},
	"codeSize":                   {ignored: true},
	"invocationRestriction":      {ignored: true},
}

// CheckFields refuses a request body that sets a field fcd does not
// implement. schema is functionFields for function bodies. The error is
// an *InvalidError naming the field by its JSON path.
func checkFields(body []byte, schema map[string]field) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil // the typed decoding reports it
	}
	return checkObject("", m, schema)
}

func checkObject(path string, m map[string]json.RawMessage, schema map[string]field) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first offending field, stably
	for _, k := range keys {
		v := m[k]
		name := path + k
		f, known := lookupField(schema, k)
		switch {
		case !known:
			if !emptyJSON(v) {
				return invalid("%s is not supported here: fcd does not know this field", name)
			}
		case f.refused != "":
			if !emptyJSON(v) {
				return invalid("%s is not supported here: %s", name, f.refused)
			}
		case f.sub != nil:
			var sub map[string]json.RawMessage
			if json.Unmarshal(v, &sub) == nil && sub != nil {
				if err := checkObject(name+".", sub, f.sub); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// lookupField finds k in schema as encoding/json matches keys: exactly,
// else case-insensitively.
func lookupField(schema map[string]field, k string) (field, bool) {
	if f, ok := schema[k]; ok {
		return f, true
	}
	for name, f := range schema {
		if strings.EqualFold(name, k) {
			return f, true
		}
	}
	return field{}, false
}

// emptyJSON reports whether v asks for nothing: null, false, 0, "", [] or
// an object whose members are all empty.
func emptyJSON(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return true
	}
	switch v[0] {
	case 'n', 'f':
		return true // null, false
	case '"':
		return string(v) == `""`
	case '[':
		var a []json.RawMessage
		return json.Unmarshal(v, &a) == nil && len(a) == 0
	case '{':
		var o map[string]json.RawMessage
		if json.Unmarshal(v, &o) != nil {
			return false
		}
		for _, m := range o {
			if !emptyJSON(m) {
				return false
			}
		}
		return true
	default:
		var n float64
		return json.Unmarshal(v, &n) == nil && n == 0
	}
}

var sessionConfigFields = map[string]field{
	"affinityHeaderFieldName":       honoured,
	"sessionIdleTimeoutInSeconds":   honoured,
	"sessionTTLInSeconds":           honoured,
	"sessionConcurrencyPerInstance": refused("fcd binds any number of sessions to an instance, up to its instanceConcurrency requests at once"),
}

var triggerFields = map[string]field{
	"triggerName":    honoured,
	"triggerType":    honoured,
	"triggerConfig":  honoured, // its members: httpTriggerFields
	"description":    honoured,
	"qualifier":      honoured,
	"invocationRole": refused("fcd runs HTTP triggers only, which need no invocation role"),
	"sourceArn":      refused("fcd runs HTTP triggers only, which have no event source"),
}

var httpTriggerFields = map[string]field{
	"authType":           honoured,
	"methods":            honoured,
	"authConfig":         refused("fcd's HTTP triggers authenticate with authType function (signed requests) only"),
	"disableURLInternet": refused("fcd serves one URL per trigger, on its own listener"),
}

var provisionFields = map[string]field{
	"defaultTarget":          honoured,
	"target":                 honoured,
	"alwaysAllocateCPU":      honoured, // true only; see CheckProvisionFields
	"alwaysAllocateGPU":      refused("fcd runs no GPU instances"),
	"scheduledActions":       refused("fcd keeps a fixed provisioned target; scheduled scaling is " + notHere),
	"targetTrackingPolicies": refused("fcd keeps a fixed provisioned target; target tracking is " + notHere),
}

// CheckProvisionFields refuses a PutProvisionConfig body that asks for
// what fcd does not do: scheduled or tracking targets, GPUs, or CPU taken
// away between requests (alwaysAllocateCPU false: an instance's cgroup
// keeps its CPU share). Errors are *InvalidError.
func CheckProvisionFields(body []byte) error {
	if err := checkFields(body, provisionFields); err != nil {
		return err
	}
	var in struct {
		AlwaysAllocateCPU *bool `json:"alwaysAllocateCPU"`
	}
	if json.Unmarshal(body, &in) == nil && in.AlwaysAllocateCPU != nil && !*in.AlwaysAllocateCPU {
		return invalid("alwaysAllocateCPU false is not supported here: fcd's provisioned instances always hold their CPU")
	}
	return nil
}

// DecodeTriggerInput decodes a CreateTrigger or UpdateTrigger body,
// refusing fields fcd does not implement. Errors are *InvalidError.
func DecodeTriggerInput(body []byte) (*TriggerInput, error) {
	var in TriggerInput
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, invalid("request body is not valid JSON for this API: %v", err)
	}
	if err := checkFields(body, triggerFields); err != nil {
		return nil, err
	}
	return &in, nil
}
