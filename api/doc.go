// Package api holds fcd's public wire contract: the Function Compute 3.0
// (API version 2023-03-30) resource types with the JSON field names the
// official SDKs send and parse, their defaults and validation rules, and the
// Alibaba Cloud signature V3 (ACS3-HMAC-SHA256) that every API call carries.
//
// It owns no state and does no I/O. Validation errors wrap
// errdefs.ErrInvalidArgument; the HTTP status and FC error code are chosen at
// the edge, by package proxy.
package api

// Version is the FC API version fcd serves, the first path segment of every
// control API call.
const Version = "2023-03-30"

// RuntimeCustomContainer is the only runtime fcd runs.
const RuntimeCustomContainer = "custom-container"

// Acceleration types of customContainerConfig.accelerationType.
const (
	// AccelerationDefault uses the image's accelerated form once it is Ready
	// and the original image until then.
	AccelerationDefault = "Default"
	// AccelerationNone always uses the original image.
	AccelerationNone = "None"
)

// Acceleration statuses of customContainerConfig.accelerationInfo.status.
const (
	AccelerationPreparing = "Preparing"
	AccelerationReady     = "Ready"
	AccelerationFailed    = "Failed"
)

// Function states and last-update statuses, as FC reports them.
const (
	StateActive           = "Active"
	UpdateSuccessful      = "Successful"
	ReasonImageOptimizing = "ImageOptimizing"
)
