package proxy

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// Keys looks up the secret of an access key. It is consulted on every signed
// request and must be cheap and safe for concurrent use.
type Keys interface {
	// Secret returns the secret of accessKeyID, and false for an unknown key.
	Secret(accessKeyID string) (secret string, ok bool)
}

// StaticKeys is a fixed set of access keys, id to secret.
type StaticKeys map[string]string

// Secret implements Keys.
func (k StaticKeys) Secret(id string) (string, bool) {
	s, ok := k[id]
	return s, ok
}

var _ Keys = StaticKeys(nil)

// verifier checks Alibaba Cloud V3 signatures: the canonical request, the
// body hash, the date window and nonce reuse.
//
// The check is in two steps, so that a request's body is read only once
// its sender is known: verifyHead checks everything the headers carry,
// the signature included (it covers x-acs-content-sha256, the body's hash
// as sent), and verifyBody then checks the body against that hash and
// spends the nonce.
type verifier struct {
	keys Keys
	skew time.Duration
	now  func() time.Time
	// notBefore is when this verifier started, to the second: requests
	// dated earlier are refused. Nonces live in memory, so a restarted
	// fcd cannot know which requests signed before its start it already
	// served; refusing them all closes replay across restarts without a
	// write per request. The cost: a client whose clock lags fcd's by d
	// is refused for d after a restart (its SDK signs again on retry).
	notBefore time.Time
	nonces    nonceCache
	// sessions are the console's sessions (session.go), accepted in
	// place of a signature on unsigned requests that carry one.
	sessions sessions
}

func newVerifier(keys Keys, skew time.Duration, now func() time.Time) verifier {
	// x-acs-date has whole seconds: a request signed in the second fcd
	// starts in carries that second and must pass.
	return verifier{keys: keys, skew: skew, now: now, notBefore: now().Truncate(time.Second)}
}

// signedHead is a request whose headers verifyHead accepted.
type signedHead struct {
	keyID   string
	payload string // x-acs-content-sha256 as sent
	nonce   string
	now     time.Time
	// session is set for a console request, authenticated by its session
	// cookie and CSRF header instead of a signature: it has no body hash
	// and no nonce to check.
	session bool
}

// verify checks the signature of the request in ctx over body. It returns
// the access key id that signed it.
func (v *verifier) verify(ctx *fasthttp.RequestCtx, body []byte) (string, *apiError) {
	head, aerr := v.verifyHead(ctx)
	if aerr != nil {
		return "", aerr
	}
	return head.keyID, v.verifyBody(head, body)
}

// verifyHead checks a request's headers and signature, before its body
// is read: an unsigned or forged request costs no body buffer.
func (v *verifier) verifyHead(ctx *fasthttp.RequestCtx) (signedHead, *apiError) {
	h := &ctx.Request.Header
	authz := h.Peek(api.HeaderAuthorization)
	if len(authz) == 0 {
		if fromConsole(h) {
			keyID, aerr := v.sessions.check(ctx, v.keys, v.now())
			return signedHead{keyID: keyID, session: true}, aerr
		}
		return signedHead{}, newError(http.StatusForbidden, CodeAccessDenied, "the request is not signed: Authorization header missing (fcd accepts ACS3-HMAC-SHA256 signatures)")
	}
	a, err := api.ParseAuthorization(string(authz))
	if err != nil {
		return signedHead{}, newError(http.StatusForbidden, CodeSignatureNotMatch, err.Error())
	}
	secret, ok := v.keys.Secret(a.AccessKeyID)
	if !ok {
		return signedHead{}, newError(http.StatusForbidden, CodeAccessDenied, fmt.Sprintf("access key %q is not known to this fcd", a.AccessKeyID))
	}
	date, err := api.ParseDate(string(h.Peek(api.HeaderDate)))
	if err != nil {
		return signedHead{}, newError(http.StatusForbidden, CodeSignatureNotMatch, "x-acs-date is missing or not in ISO 8601 form (2006-01-02T15:04:05Z)")
	}
	now := v.now()
	if d := now.Sub(date); d > v.skew || d < -v.skew {
		return signedHead{}, newError(http.StatusForbidden, CodeSignatureNotMatch, fmt.Sprintf("x-acs-date %s is more than %s away from the server time %s", date.Format(api.DateFormat), v.skew, now.UTC().Format(api.DateFormat)))
	}
	if date.Before(v.notBefore) {
		return signedHead{}, newError(http.StatusForbidden, CodeSignatureNotMatch, fmt.Sprintf("x-acs-date %s is before this fcd started (%s): a request signed before a restart may have been served already, sign it again", date.UTC().Format(api.DateFormat), v.notBefore.UTC().Format(api.DateFormat)))
	}
	payload := string(h.Peek(api.HeaderContentSHA256))
	if !api.IsPayloadHash(payload) {
		return signedHead{}, newError(http.StatusForbidden, CodeSignatureNotMatch, "x-acs-content-sha256 is missing or not a hex SHA-256")
	}
	nonce := string(h.Peek(api.HeaderNonce))
	if nonce == "" || v.nonces.seen(nonce, now, 2*v.skew) {
		return signedHead{}, newError(http.StatusForbidden, CodeSignatureNotMatch, "x-acs-signature-nonce is missing or was already used")
	}
	req := api.Request{
		Method:      string(ctx.Method()),
		Path:        string(ctx.Request.URI().PathOriginal()),
		Query:       queryValues(ctx.QueryArgs()),
		Header:      func(name string) []string { return headerValues(h, name) },
		PayloadHash: payload,
	}
	want := api.Sign(secret, api.CanonicalRequest(req, a.SignedHeaders))
	if subtle.ConstantTimeCompare([]byte(want), []byte(a.Signature)) != 1 {
		return signedHead{}, newError(http.StatusForbidden, CodeSignatureNotMatch, "the request signature does not match: check the access key secret and the signing of method, path, query, signed headers and body")
	}
	return signedHead{keyID: a.AccessKeyID, payload: payload, nonce: nonce, now: now}, nil
}

// verifyBody checks body against the hash the signed head carries and
// spends the request's nonce.
func (v *verifier) verifyBody(head signedHead, body []byte) *apiError {
	if head.session {
		return nil
	}
	if api.HashPayload(body) != head.payload {
		return newError(http.StatusForbidden, CodeSignatureNotMatch, "x-acs-content-sha256 does not match the SHA-256 of the request body")
	}
	// The nonce is recorded only for a valid signature and body, so a
	// forged request cannot burn a legitimate client's nonce.
	if !v.nonces.add(head.nonce, head.now, 2*v.skew) {
		return newError(http.StatusForbidden, CodeSignatureNotMatch, "x-acs-signature-nonce is missing or was already used")
	}
	return nil
}

func queryValues(args *fasthttp.Args) url.Values {
	if args.Len() == 0 {
		return nil
	}
	q := make(url.Values, args.Len())
	for k, v := range args.All() {
		q[string(k)] = append(q[string(k)], string(v))
	}
	return q
}

func headerValues(h *fasthttp.RequestHeader, name string) []string {
	if name == "host" {
		return []string{string(h.Host())}
	}
	var out []string
	for _, v := range h.PeekAll(name) {
		out = append(out, string(v))
	}
	return out
}

// nonceCache remembers nonces for at least the clock-skew window: older
// requests are refused by their date, so older nonces need no memory. Two
// generations rotate every window, bounding memory by the request rate.
type nonceCache struct {
	mu      sync.Mutex
	cur     map[string]struct{}
	prev    map[string]struct{}
	rotated time.Time
}

// seen reports whether nonce was recorded, without recording it.
func (c *nonceCache) seen(nonce string, now time.Time, window time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotate(now, window)
	_, cur := c.cur[nonce]
	_, prev := c.prev[nonce]
	return cur || prev
}

func (c *nonceCache) rotate(now time.Time, window time.Duration) {
	if c.cur == nil || now.Sub(c.rotated) > window {
		// Two windows: a nonce recorded just before a rotation must still be
		// found until its request's date falls out of the window.
		c.prev, c.cur, c.rotated = c.cur, make(map[string]struct{}), now
	}
}

// add records nonce and reports whether it was new.
func (c *nonceCache) add(nonce string, now time.Time, window time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotate(now, window)
	if _, ok := c.cur[nonce]; ok {
		return false
	}
	if _, ok := c.prev[nonce]; ok {
		return false
	}
	c.cur[nonce] = struct{}{}
	return true
}
