// Package iam holds fcd's roles and the temporary credentials issued for
// them.
//
// A role (ARN acs:ram::<account>:role/<name>) names the container image
// repositories a function may pull. A function names its role; at cold start
// the platform assumes the role through an STS AssumeRole call and uses the
// temporary credentials (access key id, secret, session token, expiry) for
// every registry request of the start, and hands them to the instance.
//
// The package has three parts:
//
//   - Store: the roles, kept in fcd's bbolt file, and the key that signs
//     session tokens. A session token is stateless: it carries the role,
//     the temporary access key id and the expiry under an HMAC, and the
//     temporary secret is derived from the access key id under a second
//     HMAC key, so any holder of the Store can verify a credential triple
//     without a lookup (VerifySession) and across restarts.
//   - Issuer: an http.Handler speaking the STS query protocol (Action=
//     AssumeRole, Version=2011-06-15) with AWS XML responses and errors, so
//     the unchanged AWS SDK talks to it. It verifies the caller's SigV4
//     signature against the platform's service keys.
//   - Provider: the client side. It assumes a role through any
//     STS-compatible endpoint using the AWS SDK's stscreds provider wrapped
//     in aws.CredentialsCache, one cache per role, refreshed before expiry.
//
// The package does not decide HTTP status codes of fcd's own API (that is
// proxy's job); its errors carry github.com/containerd/errdefs categories.
//
// # Bucket schema
//
// Everything lives under the top-level bucket "iam/v1" of the shared bbolt
// file (the metadata store's own root is "v1"):
//
//	iam/v1/
//	  meta/
//	    version      uint64 big-endian: schema version (see migrations.go)
//	    session-key  32 random bytes: master key for session tokens
//	  roles/
//	    <name>       JSON roleRecord {name, repositories, description, createdTime}
//
// The ARN of a role is derived from the store's account id and the name, so
// it is not stored.
package iam
