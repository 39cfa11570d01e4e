// Package regtest is an OCI distribution registry for tests that can be
// told to misbehave the way real registries do, so the lazy path's range
// fetcher (puller/remote) and its users (puller/lazyfs, the puller seams)
// can be tested against each behaviour on loopback, without root.
//
// It wraps go-containerregistry's pkg/registry handler for manifests,
// uploads and referrers, with blobs held in memory (AddBlob, or pushed
// through the API), and serves blob GETs itself with http.ServeContent
// (so single and multiple ranges work as in a well-behaved registry)
// unless Faults say otherwise:
//
//   - RefuseMultiRange: a Range naming more than one range gets 400;
//   - IgnoreRange: a ranged GET gets 200 and the whole blob;
//   - Redirect: blob GETs get 307 to a signed URL on the same server that
//     expires after SignedURLTTL (an expired one gets 403, as S3 does);
//   - Auth: every /v2/ request needs a bearer token from /token (Docker
//     token protocol, GET with basic auth or OAuth2 POST), issued for the
//     credentials set with SetCredentials and living TokenTTL; an expired
//     token gets 401 with a challenge, or ExpiredStatus (403 as some
//     registries answer, without a challenge); ExpireTokens expires all
//     issued tokens at once;
//   - Stalls / DropAfter / Fails: the next few blob bodies stop sending
//     after StallAfter bytes until the client goes away, lose their
//     connection after DropAfter bytes, or are answered with FailStatus;
//   - Down: every request gets 503.
//
// Every request is logged (Requests) with its path, Range header, status
// and body bytes sent, for assertions such as "one single-range GET"; a
// request is logged when its handler returns, so the log is in completion
// order. Hold installs a Gate that keeps blob bodies back until released
// and reports each request as it arrives, for tests of queueing.
//
// It is test-only: it keeps everything in memory and trusts its callers.
package regtest
