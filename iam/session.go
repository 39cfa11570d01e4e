package iam

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Session is what a verified session token says: which role the temporary
// credentials act as, and until when.
type Session struct {
	// AccessKeyID is the temporary access key id, "STS." followed by hex.
	AccessKeyID string
	// RoleARN is the assumed role.
	RoleARN string
	// SessionName is the RoleSessionName given to AssumeRole.
	SessionName string
	// IssuedAt and Expiration bound the credentials' validity.
	IssuedAt, Expiration time.Time
}

// Credentials are temporary credentials for a role, as AssumeRole returns
// them.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}

// tokenPrefix versions the session token format:
//
//	FCDSTS1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(macKey, "FCDSTS1."+claims))>
const tokenPrefix = "FCDSTS1."

// tokenClaims is the signed payload of a session token.
type tokenClaims struct {
	AccessKeyID string `json:"a"`
	RoleARN     string `json:"r"`
	SessionName string `json:"s"`
	IssuedAt    int64  `json:"i"`
	Expiration  int64  `json:"e"`
}

// sessionKeys are derived from the stored master key so that the token MAC
// and the secret derivation never share a key.
type sessionKeys struct {
	mac    []byte
	secret []byte
}

func deriveKeys(master []byte) sessionKeys {
	return sessionKeys{
		mac:    hmacSum(master, []byte("fcd session token v1")),
		secret: hmacSum(master, []byte("fcd secret access key v1")),
	}
}

func hmacSum(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// secretFor derives the temporary secret of an access key id. Its alphabet
// (base64url) has no ':', which the registry's password encoding relies on.
func (k sessionKeys) secretFor(accessKeyID string) string {
	return base64.RawURLEncoding.EncodeToString(hmacSum(k.secret, []byte(accessKeyID)))
}

// IssueSession mints temporary credentials for the role roleARN, valid from
// issuedAt until expiration. It does not check that the role exists: the
// Issuer does that before calling it, and PullPatterns checks again on use.
func (s *Store) IssueSession(ctx context.Context, roleARN, sessionName string, issuedAt, expiration time.Time) (Credentials, error) {
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return Credentials{}, err
	}
	akid := "STS." + strings.ToUpper(hex.EncodeToString(id))
	claims, err := json.Marshal(tokenClaims{
		AccessKeyID: akid,
		RoleARN:     roleARN,
		SessionName: sessionName,
		IssuedAt:    issuedAt.Unix(),
		Expiration:  expiration.Unix(),
	})
	if err != nil {
		return Credentials{}, err
	}
	signed := tokenPrefix + base64.RawURLEncoding.EncodeToString(claims)
	mac := base64.RawURLEncoding.EncodeToString(hmacSum(s.keys.mac, []byte(signed)))
	return Credentials{
		AccessKeyID:     akid,
		SecretAccessKey: s.keys.secretFor(akid),
		SessionToken:    signed + "." + mac,
		Expiration:      time.Unix(expiration.Unix(), 0).UTC(),
	}, nil
}

// VerifySession checks a temporary credential triple: the session token
// must carry this store's MAC, name accessKeyID, and not be expired at the
// store's clock, and secretAccessKey must be the one issued with it. It
// returns ErrInvalidCredentials or ErrExpiredCredentials otherwise. It does
// not look the role up; PullPatterns does.
func (s *Store) VerifySession(ctx context.Context, accessKeyID, secretAccessKey, sessionToken string) (Session, error) {
	body, ok := strings.CutPrefix(sessionToken, tokenPrefix)
	if !ok {
		return Session{}, fmt.Errorf("session token format: %w", ErrInvalidCredentials)
	}
	claimsB64, macB64, ok := strings.Cut(body, ".")
	if !ok {
		return Session{}, fmt.Errorf("session token format: %w", ErrInvalidCredentials)
	}
	gotMAC, err := base64.RawURLEncoding.DecodeString(macB64)
	if err != nil {
		return Session{}, fmt.Errorf("session token signature: %w", ErrInvalidCredentials)
	}
	wantMAC := hmacSum(s.keys.mac, []byte(tokenPrefix+claimsB64))
	if !hmac.Equal(gotMAC, wantMAC) {
		return Session{}, fmt.Errorf("session token signature does not match: %w", ErrInvalidCredentials)
	}
	raw, err := base64.RawURLEncoding.DecodeString(claimsB64)
	if err != nil {
		return Session{}, fmt.Errorf("session token claims: %w", ErrInvalidCredentials)
	}
	var c tokenClaims
	if err := json.Unmarshal(raw, &c); err != nil {
		return Session{}, fmt.Errorf("session token claims: %w", ErrInvalidCredentials)
	}
	if subtle.ConstantTimeCompare([]byte(c.AccessKeyID), []byte(accessKeyID)) != 1 {
		return Session{}, fmt.Errorf("session token is for another access key id: %w", ErrInvalidCredentials)
	}
	if subtle.ConstantTimeCompare([]byte(s.keys.secretFor(c.AccessKeyID)), []byte(secretAccessKey)) != 1 {
		return Session{}, fmt.Errorf("access key secret does not match: %w", ErrInvalidCredentials)
	}
	sess := Session{
		AccessKeyID: c.AccessKeyID,
		RoleARN:     c.RoleARN,
		SessionName: c.SessionName,
		IssuedAt:    time.Unix(c.IssuedAt, 0).UTC(),
		Expiration:  time.Unix(c.Expiration, 0).UTC(),
	}
	if !s.now().Before(sess.Expiration) {
		return sess, fmt.Errorf("session of %s expired at %s: %w", c.RoleARN, sess.Expiration.Format(time.RFC3339), ErrExpiredCredentials)
	}
	return sess, nil
}

// PullPatterns verifies temporary credentials (as VerifySession) and
// returns the repository patterns of the role they act as, read from the
// store at the time of the call. A role deleted since the credentials were
// issued gives ErrRoleNotFound. The embedded registry's token endpoint
// calls this.
func (s *Store) PullPatterns(ctx context.Context, accessKeyID, secretAccessKey, sessionToken string) (roleARN string, patterns []string, err error) {
	sess, err := s.VerifySession(ctx, accessKeyID, secretAccessKey, sessionToken)
	if err != nil {
		return "", nil, err
	}
	r, err := s.GetRoleByARN(ctx, sess.RoleARN)
	if err != nil {
		return sess.RoleARN, nil, err
	}
	return r.ARN, r.Repositories, nil
}
