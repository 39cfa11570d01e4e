package api

import "time"

// ColdStart is one successful instance start of a function, phase by
// phase, as GET /fcd/v1/coldstarts/{function} returns it (an fcd
// extension, for fcctl function coldstarts).
type ColdStart struct {
	InstanceID string    `json:"instanceId"`
	StartedAt  time.Time `json:"startedAt"`
	// Runtime is the OCI runtime that created the instance: crun, runc
	// or the path fcd was given.
	Runtime string `json:"runtime,omitempty"`
	// Phases are in the order the start ran them: pull (with, where the
	// image implementation takes them, its steps resolve, auth, index,
	// fetch, mount, prefetch), rootfs, network, container, task,
	// task_start, probe, and first_response once the request that waited
	// for the start was answered. Each has its start offset: phases may
	// overlap.
	Phases []ColdStartPhase `json:"phases"`
	// TotalMs is the whole start; it exceeds the phases' sum by the
	// bookkeeping between them.
	TotalMs float64 `json:"totalMs"`
	// Cached is true when the image was already on the host;
	// FetchedBytes is what its pull downloaded.
	Cached       bool  `json:"cached"`
	FetchedBytes int64 `json:"fetchedBytes"`
	// FirstResponseMs is from the start's beginning until the proxy
	// began answering the request that waited for it; 0 when none did
	// (yet).
	FirstResponseMs float64 `json:"firstResponseMs,omitempty"`
}

// ColdStartPhase is one phase of a ColdStart.
type ColdStartPhase struct {
	Name string `json:"name"`
	// AtMs is when the phase began, from the start's beginning; Ms is
	// how long it ran.
	AtMs float64 `json:"atMs"`
	Ms   float64 `json:"ms"`
	// Bytes is, for pull, the compressed bytes fetched, for prefetch the
	// bytes it made local.
	Bytes int64 `json:"bytes,omitempty"`
}

// ColdStartsPage is the response of GET /fcd/v1/coldstarts/{function}:
// the last starts, oldest first.
type ColdStartsPage struct {
	ColdStarts []ColdStart `json:"coldStarts"`
}
