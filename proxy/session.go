package proxy

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// Console sessions. The web console never keeps an access key secret: it
// signs one request, POST /fcd/v1/session, with the key (ACS3 signature, as
// every API call), and fcd answers with a short-lived session:
//
//   - a random token in HttpOnly, SameSite=Strict cookies, one per API
//     prefix (/2023-03-30/ and /fcd/v1/), so the browser never sends it
//     to HTTP trigger paths, where a function would see it;
//   - a second random value, the CSRF token, in the response body, which
//     the console sends back in the x-fcd-csrf header.
//
// An unsigned request carrying both is accepted as signed by the session's
// access key until the session expires or is deleted (DELETE
// /fcd/v1/session, the console's sign-out). A cookie without the header,
// or with a wrong one, is refused: another site's page can make the
// browser send the cookie (SameSite aside) but cannot read the token.
// Sessions live in memory: a restart of fcd signs every console out.
//
//	POST   /fcd/v1/session   signed; creates a session  {"accessKeyId","csrfToken","expiresAt"}
//	GET    /fcd/v1/session   the session in use (signed or session)
//	DELETE /fcd/v1/session   ends the session in use

// HeaderCSRF carries a console session's CSRF token.
const HeaderCSRF = "x-fcd-csrf"

// SessionTTL is how long a console session lasts.
const SessionTTL = time.Hour

// maxSessions bounds the sessions kept; past it the oldest is dropped.
const maxSessions = 1024

// SessionCookies are the session cookies, by path: the API prefixes the
// console calls. A browser sends at most one of them with a request. They
// have different names because a response cannot set two cookies of one
// name (fasthttp keeps one Set-Cookie per name).
var SessionCookies = [...]struct{ Name, Path string }{
	{"fcd_session", "/" + api.Version + "/"},
	{"fcd_session_admin", adminPrefix},
}

// sessionCookie returns the session cookie a request carries.
func sessionCookie(h *fasthttp.RequestHeader) []byte {
	for _, c := range SessionCookies {
		if v := h.Cookie(c.Name); len(v) > 0 {
			return v
		}
	}
	return nil
}

// Session is the body of the session endpoints. It never holds the
// session token itself, which only travels in the cookie.
type Session struct {
	AccessKeyID string    `json:"accessKeyId"`
	CSRFToken   string    `json:"csrfToken,omitempty"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

type session struct {
	accessKeyID string
	csrf        string
	expires     time.Time
}

// sessions are the console sessions, by the SHA-256 of their token, so a
// dump of memory cannot be replayed as a cookie.
type sessions struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]session
}

func newToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("proxy: no randomness for a session token: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// create starts a session of accessKeyID and returns its token and CSRF
// token.
func (s *sessions) create(accessKeyID string, now time.Time) (token string, sess session) {
	token = newToken()
	sess = session{accessKeyID: accessKeyID, csrf: newToken(), expires: now.Add(SessionTTL)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[[sha256.Size]byte]session{}
	}
	s.sweepLocked(now)
	if len(s.m) >= maxSessions {
		s.dropOldestLocked()
	}
	s.m[sha256.Sum256([]byte(token))] = sess
	return token, sess
}

func (s *sessions) sweepLocked(now time.Time) {
	for k, v := range s.m {
		if !now.Before(v.expires) {
			delete(s.m, k)
		}
	}
}

func (s *sessions) dropOldestLocked() {
	var oldest [sha256.Size]byte
	var at time.Time
	for k, v := range s.m {
		if at.IsZero() || v.expires.Before(at) {
			oldest, at = k, v.expires
		}
	}
	delete(s.m, oldest)
}

// lookup returns the live session of token.
func (s *sessions) lookup(token []byte, now time.Time) (session, bool) {
	key := sha256.Sum256(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[key]
	if ok && !now.Before(sess.expires) {
		delete(s.m, key)
		return session{}, false
	}
	return sess, ok
}

func (s *sessions) remove(token []byte) {
	key := sha256.Sum256(token)
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

// fromConsole reports whether an unsigned request claims a console
// session: it carries the session cookie.
func fromConsole(h *fasthttp.RequestHeader) bool {
	return len(sessionCookie(h)) > 0
}

// check authenticates an unsigned request by its session cookie and CSRF
// header, returning the session's access key id, which keys must still
// know. The cookie and the
// header are removed from the request, so an invocation does not forward
// them to the function.
func (s *sessions) check(ctx *fasthttp.RequestCtx, keys Keys, now time.Time) (string, *apiError) {
	h := &ctx.Request.Header
	token := sessionCookie(h)
	sess, ok := s.lookup(token, now)
	if !ok {
		return "", newError(http.StatusForbidden, CodeAccessDenied, "the console session has expired or was signed out: sign in again")
	}
	csrf := h.Peek(HeaderCSRF)
	if len(csrf) == 0 || subtle.ConstantTimeCompare(csrf, []byte(sess.csrf)) != 1 {
		return "", newError(http.StatusForbidden, CodeAccessDenied, "a console session needs its CSRF token in the "+HeaderCSRF+" header")
	}
	if _, ok := keys.Secret(sess.accessKeyID); !ok {
		s.remove(token)
		return "", newError(http.StatusForbidden, CodeAccessDenied, "the console session's access key is no longer known: sign in again")
	}
	ctx.SetUserValue(sessionTokenKey{}, string(token))
	for _, c := range SessionCookies {
		h.DelCookie(c.Name)
	}
	h.Del(HeaderCSRF)
	return sess.accessKeyID, nil
}

// handleSession serves /fcd/v1/session; the request was verified, by
// signature or by session.
func (s *Server) handleSession(ctx *fasthttp.RequestCtx, method, keyID string) error {
	h := &ctx.Request.Header
	signed := len(h.Peek(api.HeaderAuthorization)) > 0
	switch method {
	case http.MethodPost:
		if !signed {
			return newError(http.StatusForbidden, CodeAccessDenied, "a session is created by a signed request only, never from another session")
		}
		token, sess := s.verifier.sessions.create(keyID, s.opts.Now())
		for _, c := range SessionCookies {
			setSessionCookie(ctx, c.Name, token, c.Path, sess.expires)
		}
		ctx.Response.Header.Set("Cache-Control", "no-store")
		return writeJSON(ctx, http.StatusOK, Session{AccessKeyID: keyID, CSRFToken: sess.csrf, ExpiresAt: sess.expires})
	case http.MethodGet:
		out := Session{AccessKeyID: keyID}
		if !signed {
			if sess, ok := s.verifier.sessions.lookup(sessionToken(ctx), s.opts.Now()); ok {
				out.ExpiresAt = sess.expires
			}
		}
		ctx.Response.Header.Set("Cache-Control", "no-store")
		return writeJSON(ctx, http.StatusOK, out)
	case http.MethodDelete:
		if !signed {
			s.verifier.sessions.remove(sessionToken(ctx))
		}
		for _, c := range SessionCookies {
			setSessionCookie(ctx, c.Name, "", c.Path, time.Unix(0, 0))
		}
		ctx.SetStatusCode(http.StatusNoContent)
		return nil
	}
	return newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, method+" is not allowed on "+string(ctx.Path()))
}

// sessionTokenKey keeps, in the request's user values, the token of the
// session check accepted (check removes the cookie from the header).
type sessionTokenKey struct{}

func sessionToken(ctx *fasthttp.RequestCtx) []byte {
	t, _ := ctx.UserValue(sessionTokenKey{}).(string)
	return []byte(t)
}

func setSessionCookie(ctx *fasthttp.RequestCtx, name, token, path string, expires time.Time) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(name)
	c.SetValue(token)
	c.SetPath(path)
	c.SetExpire(expires)
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	ctx.Response.Header.SetCookie(c)
}
