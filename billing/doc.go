// Package billing meters what functions cost and keeps the durable ledger.
//
// Two meters, both in GB-seconds (memorySize in GB × seconds):
//
//   - image pull: for every cold start, from pull start to pull end, with
//     the bytes fetched. A cold start that finds the image already on the
//     host (a cache hit) pays nothing: its record has CacheHit set and
//     GBSeconds 0.
//   - invocation: from the request reaching the instance to its answer.
//
// What a crash may lose, and what it may not:
//
//   - pull records: Ledger.MeterPull writes each record in its own bbolt
//     transaction (fsynced) before it returns, so no pull record is ever
//     lost once MeterPull returned.
//   - invocation records: the proxy meters through a Recorder, which
//     batches them off the request path and commits once per
//     flushInterval (200 ms). A crash loses at most the invocations
//     gathered since the last commit; a clean shutdown (Recorder.Close)
//     loses none. Ledger.MeterInvocation, used directly, commits per call
//     like MeterPull.
//
// The ledger is append-only: nothing updates or deletes a record.
//
// The package does not measure anything itself: callers (the puller, as
// its puller.Meter, once a cold-started instance is ready; the proxy's
// invoke path) pass start and end times. What a pull record holds, for a
// full and a lazy pull alike, is documented on puller.Meter.
//
// # Bucket schema
//
// Under the top-level bucket "billing/v1" of fcd's shared bbolt file:
//
//	billing/v1/
//	  meta/
//	    version        uint64 big-endian: schema version (migrations.go)
//	  records/
//	    <id>           JSON Record; id = uint64 big-endian from the
//	                   bucket's sequence, so keys sort in append order
//	  functions/       (since version 2) index by function name
//	    <name>/
//	      <id>         empty value; id as in records/
package billing
