package api

import (
	"regexp"
	"strconv"

	"github.com/containerd/errdefs"
)

// QualifierLatest names a function's current, unpublished configuration.
// An empty qualifier means the same.
const QualifierLatest = "LATEST"

// FunctionVersion is a published, immutable snapshot of a function's
// configuration, as PublishFunctionVersion and ListFunctionVersions
// return it. Version ids are decimal numbers, 1, 2, ..., never reused
// while the function exists.
type FunctionVersion struct {
	VersionID        string `json:"versionId"`
	Description      string `json:"description"`
	CreatedTime      string `json:"createdTime"`
	LastModifiedTime string `json:"lastModifiedTime"`
}

// PublishVersionInput is PublishFunctionVersion's body.
type PublishVersionInput struct {
	Description string `json:"description"`
}

// Errors of the versioning API, each carrying an errdefs category. The
// proxy maps them to FC's codes.
var (
	// ErrVersionNotFound: the function has no such published version.
	ErrVersionNotFound = category("version not found", errdefs.ErrNotFound)
	// ErrAliasNotFound: the function has no alias of that name.
	ErrAliasNotFound = category("alias not found", errdefs.ErrNotFound)
	// ErrAliasExists: CreateAlias of a name in use.
	ErrAliasExists = category("alias already exists", errdefs.ErrAlreadyExists)
	// ErrVersionInUse: DeleteFunctionVersion of a version an alias
	// routes to.
	ErrVersionInUse = category("version is in use by an alias", errdefs.ErrFailedPrecondition)
	// ErrVersionUnchanged: PublishFunctionVersion when the function was
	// not updated since its newest version was published.
	ErrVersionUnchanged = category("no changes were made since last publish", errdefs.ErrFailedPrecondition)
)

type categorized struct {
	msg string
	cat error
}

func category(msg string, cat error) error { return &categorized{msg: msg, cat: cat} }

func (e *categorized) Error() string { return e.msg }
func (e *categorized) Unwrap() error { return e.cat }

// IsVersionID reports whether q names a published version (a positive
// decimal number) rather than LATEST or an alias.
func IsVersionID(q string) bool {
	n, err := strconv.ParseUint(q, 10, 64)
	return err == nil && n > 0 && strconv.FormatUint(n, 10) == q
}

var qualifierRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_-]{0,127}$`)

// ValidateQualifier checks a qualifier: empty, LATEST, a version id or an
// alias name.
func ValidateQualifier(q string) error {
	if q == "" || q == QualifierLatest || IsVersionID(q) || qualifierRE.MatchString(q) {
		return nil
	}
	return invalid("qualifier %q is invalid: use LATEST, a version id or an alias name", q)
}
