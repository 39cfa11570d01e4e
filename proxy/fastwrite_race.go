//go:build race

package proxy

// raceEnabled turns fastWriteConn off under the race detector: the
// detector learns that a write on one end of a connection happens before
// the read at the other end from annotations in internal/poll's Read and
// Write, which raw system calls bypass, and would report races that the
// connection orders. Tests without -race cover fastWriteConn.
const raceEnabled = true
