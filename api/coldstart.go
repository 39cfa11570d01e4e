package api

import "time"

// ColdStart is one successful instance start of a function, phase by
// phase, as GET /fcd/v1/coldstarts/{function} returns it (an fcd
// extension, for fcctl function coldstarts).
type ColdStart struct {
	InstanceID string    `json:"instanceId"`
	StartedAt  time.Time `json:"startedAt"`
	// Phases are in the order the start ran them: pull, rootfs, network,
	// container, task, task_start, probe.
	Phases []ColdStartPhase `json:"phases"`
	// TotalMs is the whole start; it exceeds the phases' sum by the
	// bookkeeping between them.
	TotalMs float64 `json:"totalMs"`
	// Cached is true when the image was already on the host;
	// FetchedBytes is what its pull downloaded.
	Cached       bool  `json:"cached"`
	FetchedBytes int64 `json:"fetchedBytes"`
}

// ColdStartPhase is one phase of a ColdStart.
type ColdStartPhase struct {
	Name string  `json:"name"`
	Ms   float64 `json:"ms"`
}

// ColdStartsPage is the response of GET /fcd/v1/coldstarts/{function}:
// the last starts, oldest first.
type ColdStartsPage struct {
	ColdStarts []ColdStart `json:"coldStarts"`
}
