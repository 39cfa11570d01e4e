package regtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	rng := req.Header.Get("Range")
	defer func() {
		r.mu.Lock()
		r.log = append(r.log, Request{Method: req.Method, Path: req.URL.Path, Range: rng, Status: rec.status, Bytes: rec.n})
		r.mu.Unlock()
	}()
	f := r.Faults()
	switch {
	case f.Down:
		http.Error(rec, "regtest: down", http.StatusServiceUnavailable)
	case req.URL.Path == "/token":
		r.serveToken(rec, req, f)
	case strings.HasPrefix(req.URL.Path, "/signed/"):
		r.serveSigned(rec, req)
	case strings.HasPrefix(req.URL.Path, "/v2/"):
		if !r.authorized(rec, req, f) {
			return
		}
		if d, ok := blobPath(req); ok && req.Method == http.MethodGet {
			r.serveBlobGet(rec, req, d)
			return
		}
		r.inner.ServeHTTP(rec, req)
	default:
		http.NotFound(rec, req)
	}
}

// blobPath returns the digest of a /v2/<repo>/blobs/<digest> request.
func blobPath(req *http.Request) (digest.Digest, bool) {
	i := strings.LastIndex(req.URL.Path, "/blobs/")
	if i < 0 {
		return "", false
	}
	d := digest.Digest(req.URL.Path[i+len("/blobs/"):])
	return d, d.Validate() == nil
}

// repoOf returns the repository named by a /v2/<repo>/{blobs,manifests,...}/x path.
func repoOf(p string) string {
	p = strings.TrimPrefix(p, "/v2/")
	for _, kind := range []string{"/blobs/", "/manifests/", "/referrers/", "/tags/"} {
		if i := strings.LastIndex(p, kind); i > 0 {
			return p[:i]
		}
	}
	return ""
}

// authorized checks the bearer token when Faults.Auth is on, answering
// the request itself when it fails.
func (r *Registry) authorized(w http.ResponseWriter, req *http.Request, f Faults) bool {
	if !f.Auth {
		return true
	}
	tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	r.mu.Lock()
	exp, known := r.tokens[tok]
	r.mu.Unlock()
	challenge := fmt.Sprintf(`Bearer realm="%s/token",service="regtest"`, r.URL)
	if repo := repoOf(req.URL.Path); repo != "" {
		challenge += fmt.Sprintf(`,scope="repository:%s:pull"`, repo)
	}
	switch {
	case !ok || !known:
		w.Header().Set("WWW-Authenticate", challenge)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
		return false
	case time.Now().After(exp):
		if f.ExpiredStatus == http.StatusForbidden {
			http.Error(w, `{"errors":[{"code":"DENIED","message":"token expired"}]}`, http.StatusForbidden)
			return false
		}
		w.Header().Set("WWW-Authenticate", challenge+`,error="invalid_token"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}`, http.StatusUnauthorized)
		return false
	}
	return true
}

// serveToken issues tokens for the login set with SetCredentials (any
// login when none is set), by GET with basic auth or OAuth2 password POST.
func (r *Registry) serveToken(w http.ResponseWriter, req *http.Request, f Faults) {
	user, secret, _ := req.BasicAuth()
	if req.Method == http.MethodPost {
		req.ParseForm()
		user, secret = req.PostForm.Get("username"), req.PostForm.Get("password")
	}
	ttl := f.TokenTTL
	if ttl == 0 {
		ttl = 5 * time.Minute
	}
	r.mu.Lock()
	ok := r.user == "" || user == r.user && secret == r.secret
	tok := ""
	if ok {
		r.tokenNo++
		tok = fmt.Sprintf("t%d-%s", r.tokenNo, randomHex())
		r.tokens[tok] = time.Now().Add(ttl)
	}
	r.mu.Unlock()
	if !ok {
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"token": tok, "access_token": tok, "expires_in": int(ttl / time.Second), "issued_at": time.Now().UTC().Format(time.RFC3339),
	})
}

// serveBlobGet answers an authorized blob GET: an injected failure, a
// redirect, or the bytes.
func (r *Registry) serveBlobGet(w http.ResponseWriter, req *http.Request, d digest.Digest) {
	r.mu.Lock()
	f := &r.faults
	fail := f.Fails != 0
	if fail && f.Fails > 0 {
		f.Fails--
	}
	status := f.FailStatus
	redirect, ttl := f.Redirect, f.SignedURLTTL
	r.mu.Unlock()
	if fail {
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		http.Error(w, "regtest: injected failure", status)
		return
	}
	if redirect {
		if ttl == 0 {
			ttl = time.Minute
		}
		sig := randomHex()
		r.mu.Lock()
		r.signed[sig] = time.Now().Add(ttl)
		r.mu.Unlock()
		http.Redirect(w, req, fmt.Sprintf("%s/signed/%s?sig=%s", r.URL, d, sig), http.StatusTemporaryRedirect)
		return
	}
	r.serveBlob(w, req, d)
}

// serveSigned serves a redirected blob GET, if its signature is valid
// and unexpired (403 otherwise, as S3 answers an expired URL).
func (r *Registry) serveSigned(w http.ResponseWriter, req *http.Request) {
	d := digest.Digest(strings.TrimPrefix(req.URL.Path, "/signed/"))
	r.mu.Lock()
	exp, ok := r.signed[req.URL.Query().Get("sig")]
	r.mu.Unlock()
	if !ok || time.Now().After(exp) || d.Validate() != nil {
		http.Error(w, "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", http.StatusForbidden)
		return
	}
	r.serveBlob(w, req, d)
}

// ExpireSignedURLs makes every signed URL handed out so far expired.
func (r *Registry) ExpireSignedURLs() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.signed {
		r.signed[k] = time.Time{}
	}
}

func (r *Registry) serveBlob(w http.ResponseWriter, req *http.Request, d digest.Digest) {
	r.mu.Lock()
	b, ok := r.blobs[d]
	f := &r.faults
	rng := req.Header.Get("Range")
	gate := r.gate
	refuse := f.RefuseMultiRange && strings.Contains(rng, ",")
	ignore := f.IgnoreRange
	var fw *faultWriter
	if f.Stalls != 0 {
		fw = &faultWriter{limit: f.StallAfter, stall: true}
		if f.Stalls > 0 {
			f.Stalls--
		}
	} else if f.Drops != 0 {
		fw = &faultWriter{limit: f.DropAfter}
		if f.Drops > 0 {
			f.Drops--
		}
	}
	r.mu.Unlock()
	switch {
	case !ok:
		http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN"}]}`, http.StatusNotFound)
		return
	case refuse:
		http.Error(w, `{"errors":[{"code":"RANGE_INVALID","message":"multiple ranges not supported"}]}`, http.StatusBadRequest)
		return
	case ignore:
		req.Header.Del("Range")
	}
	if gate != nil {
		select {
		case gate.Arrived <- Request{Method: req.Method, Path: req.URL.Path, Range: rng}:
		default:
		}
		select {
		case <-gate.release:
		case <-req.Context().Done():
			return
		}
	}
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Type", "application/octet-stream")
	if fw != nil {
		fw.ResponseWriter, fw.req = w, req
		w = fw
	}
	http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(b))
}

// recorder notes the status and body bytes of a response.
type recorder struct {
	http.ResponseWriter
	status int
	n      int64
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	n, err := r.ResponseWriter.Write(p)
	r.n += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// faultWriter sends limit body bytes, then stalls until the client goes
// away (stall) or drops the connection.
type faultWriter struct {
	http.ResponseWriter
	req   *http.Request
	limit int64
	stall bool
	n     int64
}

func (w *faultWriter) Write(p []byte) (int, error) {
	if w.n+int64(len(p)) <= w.limit {
		n, err := w.ResponseWriter.Write(p)
		w.n += int64(n)
		return n, err
	}
	k := w.limit - w.n
	n, _ := w.ResponseWriter.Write(p[:k])
	w.n += int64(n)
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	if w.stall {
		<-w.req.Context().Done()
		return n, w.req.Context().Err()
	}
	panic(http.ErrAbortHandler)
}
