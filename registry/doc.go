// Package registry runs fcd's embedded OCI distribution registry: the
// reference implementation (github.com/distribution/distribution/v3) on a
// loopback listener, with its blobs under fcd's data dir and Docker token
// authentication served by fcd itself.
//
// One listener serves two things:
//
//	/v2/...   the distribution registry; every request needs a bearer token
//	/token    the token endpoint (Docker token protocol: GET with HTTP Basic
//	          auth, or the OAuth2 password grant as a form POST)
//
// Blob GETs, a lazy pull's range reads among them, are authorized and
// described by distribution (asked as HEAD) and their bytes sent from the
// blob's file by fcd (blobs.go): distribution's own reader costs several
// times more CPU per small range.
//
// The token endpoint accepts two kinds of credentials:
//
//   - the admin key pair (username = access key id, password = secret):
//     pull and push on every repository, and the catalog;
//   - a role's temporary credentials from STS AssumeRole: username = the
//     temporary access key id, password = "<secretAccessKey>:<sessionToken>"
//     (see Password). They are verified through a RoleVerifier (the iam
//     Store), which checks the session token's signature and expiry; they
//     may only pull, and only repositories matching the role's patterns.
//
// Tokens are ES256 JWTs in distribution's claim format, repository scoped
// and short lived (Options.TokenTTL); the signing key is generated once and
// kept under the data dir, and its public half is handed to distribution's
// token access controller as a JWKS file. A request whose credentials are
// missing or wrong gets 401; one whose valid credentials grant none of the
// requested scopes gets 403, so a puller can tell "who are you" from "not
// allowed".
//
// This package does not pull images (puller does) and holds no roles (iam
// does).
//
// Files under Options.Dir:
//
//	storage/                  distribution's filesystem driver root
//	token-signing-key.pem     EC P-256 private key (PKCS#8), mode 0600
//	token-jwks.json           its public key as a JWKS, rewritten on Start
package registry
