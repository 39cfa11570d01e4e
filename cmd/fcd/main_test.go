package main

import (
	"github.com/sasha-s/go-deadlock"
)

func init() {
	// Under -race, go-cni swaps its mutex for go-deadlock's, whose
	// goroutine ids read 0 on this Go version, so two instances starting at
	// once look like one goroutine locking twice. Production builds use
	// sync.RWMutex; the race detector still checks every access.
	deadlock.Opts.Disable = true
}
