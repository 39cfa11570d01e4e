package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/api"
)

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// consoleSession is what a browser holds after signing in.
type consoleSession struct {
	cookies []*http.Cookie
	csrf    string
}

// signIn opens a session with a signed POST /fcd/v1/session and checks
// that nothing in the response carries the secret.
func signIn(t *testing.T, addr string) consoleSession {
	t.Helper()
	var got Session
	resp, eb := signedRequest{method: http.MethodPost, path: "/fcd/v1/session"}.doBody(t, addr, &got)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: got %d %+v, want 200", resp.StatusCode, eb)
	}
	if got.AccessKeyID != testKeyID || len(got.CSRFToken) != 64 || got.ExpiresAt.IsZero() {
		t.Fatalf("session %+v: want key %s, a 64-hex CSRF token and an expiry", got, testKeyID)
	}
	for name, vals := range resp.Header {
		for _, v := range vals {
			if strings.Contains(v, testSecret) {
				t.Fatalf("response header %s: %q holds the secret", name, v)
			}
		}
	}
	cookies := resp.Cookies()
	paths := map[string]string{}
	for _, c := range cookies {
		if !strings.HasPrefix(c.Name, "fcd_session") || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Value == "" || strings.Contains(c.Value, testSecret) || c.Value == got.CSRFToken {
			t.Fatalf("cookie %+v: want fcd_session*, HttpOnly, SameSite=Strict, a token that is neither the secret nor the CSRF token", c)
		}
		paths[c.Path] = c.Value
	}
	if len(cookies) != 2 || paths["/2023-03-30/"] == "" || paths["/2023-03-30/"] != paths["/fcd/v1/"] {
		t.Fatalf("got cookies %v, want one for /2023-03-30/ and one for /fcd/v1/ (never / where HTTP triggers are)", cookies)
	}
	return consoleSession{cookies: cookies, csrf: got.CSRFToken}
}

// do sends an unsigned request with the session's cookie and csrf as the
// CSRF header ("" sends none).
func (s consoleSession) do(t *testing.T, addr, method, path, csrf string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range s.cookies {
		if strings.HasPrefix(path, c.Path) {
			req.AddCookie(c)
		}
	}
	if csrf != "" {
		req.Header.Set(HeaderCSRF, csrf)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(data), testSecret) {
		t.Fatalf("%s %s: response body holds the secret: %s", method, path, data)
	}
	return resp, data
}

func TestConsoleSession(t *testing.T) {
	clock := &testClock{now: time.Now()}
	addr := testServer(t, Options{Now: clock.Now})
	s := signIn(t, addr)
	list := "/2023-03-30/functions"

	for _, tc := range []struct {
		name       string
		csrf       string
		wantStatus int
	}{
		{"cookie and CSRF token", s.csrf, http.StatusOK},
		{"no CSRF header", "", http.StatusForbidden},
		{"wrong CSRF token", strings.Repeat("0", 64), http.StatusForbidden},
		{"CSRF token of another length", s.csrf[:10], http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := s.do(t, addr, http.MethodGet, list, tc.csrf, nil)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, data, tc.wantStatus)
			}
		})
	}

	t.Run("CSRF token without the cookie", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+list, nil)
		req.Header.Set(HeaderCSRF, s.csrf)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("got %d, want 403", resp.StatusCode)
		}
	})

	t.Run("a session cannot create a session", func(t *testing.T) {
		resp, data := s.do(t, addr, http.MethodPost, "/fcd/v1/session", s.csrf, nil)
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Fatalf("got %d %s cookies %v, want 403 and no cookie", resp.StatusCode, data, resp.Cookies())
		}
	})

	t.Run("session in use", func(t *testing.T) {
		resp, data := s.do(t, addr, http.MethodGet, "/fcd/v1/session", s.csrf, nil)
		var got Session
		if err := json.Unmarshal(data, &got); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d %s, want 200 and the session", resp.StatusCode, data)
		}
		if got.AccessKeyID != testKeyID || got.CSRFToken != "" || got.ExpiresAt.IsZero() {
			t.Fatalf("got %+v, want the key id and expiry, not the CSRF token again", got)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		clock.advance(SessionTTL - time.Second)
		if resp, data := s.do(t, addr, http.MethodGet, list, s.csrf, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("just before expiry: got %d %s, want 200", resp.StatusCode, data)
		}
		clock.advance(time.Second)
		if resp, data := s.do(t, addr, http.MethodGet, list, s.csrf, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(string(data), "expired") {
			t.Fatalf("at expiry: got %d %s, want 403 naming the expiry", resp.StatusCode, data)
		}
	})
}

func TestConsoleSignOut(t *testing.T) {
	addr := testServer(t, Options{})
	s := signIn(t, addr)
	other := signIn(t, addr)
	resp, data := s.do(t, addr, http.MethodDelete, "/fcd/v1/session", s.csrf, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("sign out: got %d %s, want 204", resp.StatusCode, data)
	}
	for _, c := range resp.Cookies() {
		if !strings.HasPrefix(c.Name, "fcd_session") || c.Value != "" || c.MaxAge >= 0 && c.Expires.After(time.Unix(1, 0)) {
			t.Fatalf("sign out cookie %+v: want it cleared", c)
		}
	}
	if resp, data := s.do(t, addr, http.MethodGet, "/fcd/v1/session", s.csrf, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("after sign out: got %d %s, want 403", resp.StatusCode, data)
	}
	if resp, data := other.do(t, addr, http.MethodGet, "/fcd/v1/session", other.csrf, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("another session after sign out: got %d %s, want 200", resp.StatusCode, data)
	}
}

// TestConsoleSessionNotForwarded invokes a function from a console
// session: the instance sees neither the session cookie nor the CSRF
// token.
func TestConsoleSessionNotForwarded(t *testing.T) {
	var mu sync.Mutex
	var cookie, csrf string
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cookie, csrf = r.Header.Get("Cookie"), r.Header.Get(HeaderCSRF)
		mu.Unlock()
		io.Copy(w, r.Body)
	}))
	env := newInvokeEnvWith(t, be, 1, nil)
	s := signIn(t, env.addr)
	resp, data := s.do(t, env.addr, http.MethodPost, "/2023-03-30/functions/fn/invocations", s.csrf, strings.NewReader("event"))
	if resp.StatusCode != http.StatusOK || string(data) != "event" {
		t.Fatalf("got %d %q, want 200 and the event back", resp.StatusCode, data)
	}
	mu.Lock()
	defer mu.Unlock()
	if cookie != "" || csrf != "" {
		t.Fatalf("the instance got Cookie %q and %s %q, want neither", cookie, HeaderCSRF, csrf)
	}
}

func TestInvocationsFromLog(t *testing.T) {
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	line := func(ms int, inst, stream, text string) string {
		return start.Add(time.Duration(ms)*time.Millisecond).Format("2006-01-02T15:04:05.000000Z") + " " + inst + " " + stream + " " + text
	}
	lines := []string{
		line(0, "i-a", "fc", invokeStart+"r1"),
		line(1, "i-a", "stdout", "handling r1"),
		line(40, "i-a", "fc", invokeEnd+"r1"),
		line(50, "i-a", "fc", invokeStart+"r2"),
		line(60, "i-a", "fc", invokeEnd+"r2"),
		line(70, "i-b", "fc", invokeStart+"r3"),
		line(1070, "i-b", "fc", "Function timed out after 1 seconds RequestId: r3"),
		line(1070, "i-b", "fc", invokeEnd+"r3"),
		line(1100, "i-b", "fc", invokeStart+"r4"),
		"garbage",
	}
	starts := []api.ColdStart{{InstanceID: "i-a", StartedAt: start.Add(-time.Second), TotalMs: 900}}
	got := invocationsFromLog(lines, starts)
	want := []struct {
		id, status string
		ms         float64
		cold       bool
	}{
		{"r4", StatusRunning, 0, false},
		{"r3", StatusTimeout, 1000, false},
		{"r2", StatusEnded, 10, false},
		{"r1", StatusEnded, 40, true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d invocations %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.RequestID != w.id || g.Status != w.status || g.DurationMs != w.ms || g.Cold != w.cold || (g.ColdStart != nil) != w.cold {
			t.Errorf("invocation %d: got %s %s %vms cold=%v, want %s %s %vms cold=%v", i, g.RequestID, g.Status, g.DurationMs, g.Cold, w.id, w.status, w.ms, w.cold)
		}
	}
}
