package iam

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/containerd/errdefs"
)

// STS duration bounds and default, as in AWS STS AssumeRole.
const (
	DefaultMinDuration = 900 * time.Second
	DefaultMaxDuration = 43200 * time.Second
	DefaultDuration    = 3600 * time.Second
)

const (
	stsVersion   = "2011-06-15"
	stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
	maxFormBytes = 64 << 10
)

var sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// IssuerOptions configure an Issuer.
type IssuerOptions struct {
	// Keys maps each access key id allowed to call AssumeRole to its
	// secret: the platform's service key(s). Calls signed with any other
	// key fail with InvalidClientTokenId. Required.
	Keys map[string]string
	// MinDuration and MaxDuration bound DurationSeconds. Zero means
	// DefaultMinDuration and DefaultMaxDuration (AWS's 900 s and 12 h).
	MinDuration, MaxDuration time.Duration
	// MaxSkew is how far a request's X-Amz-Date may be from the issuer's
	// clock. Zero means 15 minutes, as AWS.
	MaxSkew time.Duration
	// Now is the issuer's clock for signature age and credential expiry.
	// Nil means time.Now.
	Now func() time.Time
	// Logger receives one line per refused call (never a secret). Nil
	// means silent.
	Logger *slog.Logger
}

// Issuer is an STS-compatible AssumeRole endpoint: an http.Handler for the
// AWS query protocol (form-encoded POST, or GET with a query string) that
// answers AssumeRole with temporary credentials for a role in its Store.
//
// Every call must carry a SigV4 signature (service "sts", any region) made
// with one of IssuerOptions.Keys. Errors use the AWS XML error shape and
// these codes: InvalidClientTokenId (unsigned, or unknown access key),
// SignatureDoesNotMatch (bad or stale signature), IncompleteSignature
// (malformed Authorization), InvalidAction, ValidationError (bad ARN,
// RoleSessionName or DurationSeconds out of bounds), NoSuchEntity (no such
// role, HTTP 404), InternalFailure.
type Issuer struct {
	store *Store
	opts  IssuerOptions
}

var _ http.Handler = (*Issuer)(nil)

// NewIssuer returns an Issuer minting credentials from store.
func NewIssuer(store *Store, opts IssuerOptions) *Issuer {
	if opts.MinDuration == 0 {
		opts.MinDuration = DefaultMinDuration
	}
	if opts.MaxDuration == 0 {
		opts.MaxDuration = DefaultMaxDuration
	}
	if opts.MaxSkew == 0 {
		opts.MaxSkew = defaultMaxSkew
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Issuer{store: store, opts: opts}
}

// stsError is an AWS query-protocol error.
type stsError struct {
	status int
	code   string
	msg    string
}

func (e *stsError) Error() string { return e.code + ": " + e.msg }

func (is *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	resp, err := is.serve(r, requestID)
	if err != nil {
		var se *stsError
		if !errors.As(err, &se) {
			se = &stsError{http.StatusInternalServerError, "InternalFailure", err.Error()}
		}
		if is.opts.Logger != nil {
			is.opts.Logger.Info("sts: call refused", "code", se.code, "message", se.msg, "requestId", requestID, "remote", r.RemoteAddr)
		}
		writeXML(w, se.status, errorResponse{
			Xmlns:     stsNamespace,
			Error:     errorBody{Type: "Sender", Code: se.code, Message: se.msg},
			RequestID: requestID,
		})
		return
	}
	writeXML(w, http.StatusOK, resp)
}

func (is *Issuer) serve(r *http.Request, requestID string) (*assumeRoleResponse, error) {
	var body []byte
	form := r.URL.Query()
	switch r.Method {
	case http.MethodPost:
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, maxFormBytes+1))
		if err != nil {
			return nil, &stsError{http.StatusBadRequest, "ValidationError", "read body: " + err.Error()}
		}
		if len(body) > maxFormBytes {
			return nil, &stsError{http.StatusRequestEntityTooLarge, "ValidationError", "request body too large"}
		}
		post, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, &stsError{http.StatusBadRequest, "ValidationError", "malformed form body: " + err.Error()}
		}
		for k, v := range post {
			form[k] = append(form[k], v...)
		}
	case http.MethodGet:
	default:
		return nil, &stsError{http.StatusMethodNotAllowed, "InvalidAction", "method " + r.Method + " not allowed"}
	}

	now := is.opts.Now()
	if _, err := verifySigV4(r.Context(), r, body, is.opts.Keys, now, is.opts.MaxSkew); err != nil {
		var ve *sigV4Error
		errors.As(err, &ve)
		return nil, &stsError{http.StatusForbidden, ve.code, ve.msg}
	}

	if v := form.Get("Version"); v != stsVersion {
		return nil, &stsError{http.StatusBadRequest, "InvalidAction", fmt.Sprintf("version %q is not %s", v, stsVersion)}
	}
	if a := form.Get("Action"); a != "AssumeRole" {
		return nil, &stsError{http.StatusBadRequest, "InvalidAction", fmt.Sprintf("could not find operation %q for version %s", a, stsVersion)}
	}
	return is.assumeRole(r, form, now, requestID)
}

func (is *Issuer) assumeRole(r *http.Request, form url.Values, now time.Time, requestID string) (*assumeRoleResponse, error) {
	arn := form.Get("RoleArn")
	if _, _, err := ParseRoleARN(arn); err != nil {
		return nil, &stsError{http.StatusBadRequest, "ValidationError", err.Error()}
	}
	sessionName := form.Get("RoleSessionName")
	if !sessionNameRE.MatchString(sessionName) {
		return nil, &stsError{http.StatusBadRequest, "ValidationError",
			fmt.Sprintf("1 validation error detected: Value %q at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]{2,64}", sessionName)}
	}
	duration := DefaultDuration
	if s := form.Get("DurationSeconds"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, &stsError{http.StatusBadRequest, "ValidationError", fmt.Sprintf("DurationSeconds %q is not an integer", s)}
		}
		duration = time.Duration(n) * time.Second
	}
	if duration < is.opts.MinDuration || duration > is.opts.MaxDuration {
		return nil, &stsError{http.StatusBadRequest, "ValidationError",
			fmt.Sprintf("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value between %d and %d",
				int64(duration/time.Second), int64(is.opts.MinDuration/time.Second), int64(is.opts.MaxDuration/time.Second))}
	}
	role, err := is.store.GetRoleByARN(r.Context(), arn)
	if errdefs.IsNotFound(err) {
		return nil, &stsError{http.StatusNotFound, "NoSuchEntity", fmt.Sprintf("the role with ARN %s cannot be found", arn)}
	}
	if err != nil {
		return nil, err
	}
	creds, err := is.store.IssueSession(r.Context(), role.ARN, sessionName, now, now.Add(duration))
	if err != nil {
		return nil, err
	}
	return &assumeRoleResponse{
		Xmlns: stsNamespace,
		Result: assumeRoleResult{
			Credentials: credentialsXML{
				AccessKeyID:     creds.AccessKeyID,
				SecretAccessKey: creds.SecretAccessKey,
				SessionToken:    creds.SessionToken,
				Expiration:      creds.Expiration.UTC().Format(time.RFC3339),
			},
			AssumedRoleUser: assumedRoleUser{
				Arn:           fmt.Sprintf("acs:ram::%s:assumed-role/%s/%s", is.store.AccountID(), role.Name, sessionName),
				AssumedRoleID: role.Name + ":" + sessionName,
			},
		},
		Metadata: responseMetadata{RequestID: requestID},
	}, nil
}

type assumeRoleResponse struct {
	XMLName  xml.Name         `xml:"AssumeRoleResponse"`
	Xmlns    string           `xml:"xmlns,attr"`
	Result   assumeRoleResult `xml:"AssumeRoleResult"`
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

type assumeRoleResult struct {
	Credentials     credentialsXML  `xml:"Credentials"`
	AssumedRoleUser assumedRoleUser `xml:"AssumedRoleUser"`
}

type credentialsXML struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumedRoleUser struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

type errorResponse struct {
	XMLName   xml.Name  `xml:"ErrorResponse"`
	Xmlns     string    `xml:"xmlns,attr"`
	Error     errorBody `xml:"Error"`
	RequestID string    `xml:"RequestId"`
}

type errorBody struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func writeXML(w http.ResponseWriter, status int, v any) {
	data, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(data)
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
