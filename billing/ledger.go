package billing

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Kind says what a record meters.
type Kind string

// Record kinds.
const (
	KindPull       Kind = "pull"
	KindInvocation Kind = "invocation"
)

// Record is one ledger entry.
type Record struct {
	// ID is assigned by the ledger, increasing in append order.
	ID   uint64 `json:"id"`
	Kind Kind   `json:"kind"`
	// Function is the function's name.
	Function string `json:"function"`
	// Image is the image reference pulled (pull records).
	Image string `json:"image,omitempty"`
	// RequestID is the invocation's request id (invocation records).
	RequestID string `json:"requestId,omitempty"`
	// InstanceID is the instance that pulled or served.
	InstanceID string    `json:"instanceId,omitempty"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	// Seconds is End - Start.
	Seconds float64 `json:"seconds"`
	// MemoryMB is the function's memorySize.
	MemoryMB int `json:"memoryMB"`
	// GBSeconds is the charge: MemoryMB/1024 × Seconds, or 0 for a pull
	// that was a cache hit.
	GBSeconds float64 `json:"gbSeconds"`
	// Bytes is what the pull fetched from the registry (pull records).
	Bytes int64 `json:"bytes,omitempty"`
	// CacheHit marks a cold start that found the image already present.
	CacheHit bool `json:"cacheHit,omitempty"`
	// Count is the number of invocations an aggregated invocation record
	// stands for (the Recorder writes one per function and instance per
	// commit); Seconds is then their summed duration, and Start and End
	// span them. Zero means a single invocation.
	Count int `json:"count,omitempty"`
}

// PullRecord is what a cold start reports about its image pull.
type PullRecord struct {
	Function, Image, InstanceID string
	MemoryMB                    int
	Start, End                  time.Time
	// Bytes fetched from the registry.
	Bytes int64
	// CacheHit: the image was already on the host; the pull costs nothing.
	CacheHit bool
}

// InvocationRecord is what the invoke path reports about one request.
type InvocationRecord struct {
	Function, RequestID, InstanceID string
	MemoryMB                        int
	Start, End                      time.Time
}

// Ledger is the durable, append-only billing ledger. It is safe for
// concurrent use. It does not own the *bolt.DB.
type Ledger struct {
	db *bolt.DB
}

// Open returns the ledger in db, creating or migrating its billing/v1
// buckets. Open is idempotent.
func Open(db *bolt.DB) (*Ledger, error) {
	if err := migrate(db, SchemaVersion()); err != nil {
		return nil, err
	}
	return &Ledger{db: db}, nil
}

// GBSeconds is the charge for memoryMB held for d.
func GBSeconds(memoryMB int, d time.Duration) float64 {
	return float64(memoryMB) / 1024 * d.Seconds()
}

// MeterPull appends a pull record and returns it as stored. A cache hit is
// recorded with GBSeconds 0.
func (l *Ledger) MeterPull(ctx context.Context, p PullRecord) (Record, error) {
	r := Record{
		Kind:       KindPull,
		Function:   p.Function,
		Image:      p.Image,
		InstanceID: p.InstanceID,
		Start:      p.Start,
		End:        p.End,
		MemoryMB:   p.MemoryMB,
		Bytes:      p.Bytes,
		CacheHit:   p.CacheHit,
	}
	return l.append(ctx, r)
}

// MeterInvocation appends an invocation record and returns it as stored.
func (l *Ledger) MeterInvocation(ctx context.Context, in InvocationRecord) (Record, error) {
	return l.append(ctx, invocation(in))
}

// append validates r, prices it and writes it in its own transaction; the
// record is on disk when append returns nil.
func (l *Ledger) append(ctx context.Context, r Record) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	if err := price(&r); err != nil {
		return Record{}, err
	}
	err := l.db.Update(func(tx *bolt.Tx) error { return put(tx, &r) })
	if err != nil {
		return Record{}, fmt.Errorf("billing: append %s record of %s: %w", r.Kind, r.Function, err)
	}
	return r, nil
}

// price validates r and fills its derived fields.
func price(r *Record) error {
	switch {
	case r.Function == "":
		return fmt.Errorf("no function name: %w", ErrInvalidRecord)
	case r.MemoryMB <= 0:
		return fmt.Errorf("function %s: memory %d MB: %w", r.Function, r.MemoryMB, ErrInvalidRecord)
	case r.Start.IsZero() || r.End.Before(r.Start):
		return fmt.Errorf("function %s: period %s to %s: %w", r.Function, r.Start, r.End, ErrInvalidRecord)
	}
	r.Start, r.End = r.Start.UTC(), r.End.UTC()
	if r.Count == 0 {
		r.Seconds = r.End.Sub(r.Start).Seconds()
	}
	if !r.CacheHit {
		r.GBSeconds = float64(r.MemoryMB) / 1024 * r.Seconds
	}
	return nil
}

// put writes a priced record, assigning its ID.
func put(tx *bolt.Tx, r *Record) error {
	records := bucket(tx, bucketRecords)
	seq, err := records.NextSequence()
	if err != nil {
		return err
	}
	r.ID = seq
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	key := idKey(seq)
	if err := records.Put(key, data); err != nil {
		return err
	}
	return indexRecord(bucket(tx, bucketFunctions), r.Function, key)
}

func idKey(id uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], id)
	return k[:]
}
