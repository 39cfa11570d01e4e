package api

import (
	"fmt"
	"regexp"
	"sort"
	"time"
)

// Alias names a published version of a function, optionally sending a
// share of its traffic to one more version, as CreateAlias, GetAlias,
// UpdateAlias and ListAliases return it.
type Alias struct {
	AliasName   string `json:"aliasName"`
	VersionID   string `json:"versionId"`
	Description string `json:"description"`
	// AdditionalVersionWeight maps at most one other version to the
	// fraction (0..1) of requests it gets; VersionID gets the rest.
	AdditionalVersionWeight map[string]float32 `json:"additionalVersionWeight"`
	CreatedTime             string             `json:"createdTime"`
	LastModifiedTime        string             `json:"lastModifiedTime"`
}

// AliasInput is CreateAlias's and UpdateAlias's body. On update, a nil
// field keeps its value; additionalVersionWeight {} removes the split.
type AliasInput struct {
	AliasName               *string            `json:"aliasName"`
	VersionID               *string            `json:"versionId"`
	Description             *string            `json:"description"`
	AdditionalVersionWeight map[string]float32 `json:"additionalVersionWeight"`
}

// aliasNameRE is FC's alias name rule. A name that is all digits would be
// read as a version id, and LATEST as the function itself: both refused.
var aliasNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_-]{0,127}$`)

// ValidateAliasName checks an alias name.
func ValidateAliasName(name string) error {
	if !aliasNameRE.MatchString(name) || name == QualifierLatest {
		return invalid("aliasName %q is invalid: use 1-128 letters, digits, '_' or '-', starting with a letter or '_', and not LATEST", name)
	}
	return nil
}

// NewAlias builds an alias from CreateAlias's body.
func NewAlias(in *AliasInput, now time.Time) (*Alias, error) {
	a := &Alias{CreatedTime: Timestamp(now), LastModifiedTime: Timestamp(now)}
	if in.AliasName != nil {
		a.AliasName = *in.AliasName
	}
	if err := ValidateAliasName(a.AliasName); err != nil {
		return nil, err
	}
	if in.VersionID == nil {
		return nil, invalid("versionId is required")
	}
	a.VersionID = *in.VersionID
	if in.Description != nil {
		a.Description = *in.Description
	}
	a.AdditionalVersionWeight = in.AdditionalVersionWeight
	return a, a.Validate()
}

// Update returns a copy of a with in applied.
func (a *Alias) Update(in *AliasInput, now time.Time) (*Alias, error) {
	n := *a
	if in.AliasName != nil && *in.AliasName != a.AliasName {
		return nil, invalid("aliasName cannot be changed (alias %q)", a.AliasName)
	}
	if in.VersionID != nil {
		n.VersionID = *in.VersionID
	}
	if in.Description != nil {
		n.Description = *in.Description
	}
	if in.AdditionalVersionWeight != nil {
		n.AdditionalVersionWeight = in.AdditionalVersionWeight
	}
	n.LastModifiedTime = Timestamp(now)
	return &n, n.Validate()
}

// Validate checks the alias's versions and weights: versionId a published
// version id, at most one additional version, other than versionId, with
// a weight in [0, 1].
func (a *Alias) Validate() error {
	if !IsVersionID(a.VersionID) {
		return invalid("versionId %q is invalid: an alias points to a published version (a number)", a.VersionID)
	}
	if len(a.AdditionalVersionWeight) > 1 {
		return invalid("additionalVersionWeight has %d versions: at most one additional version is supported", len(a.AdditionalVersionWeight))
	}
	for v, w := range a.AdditionalVersionWeight {
		if !IsVersionID(v) {
			return invalid("additionalVersionWeight: version %q is invalid: a published version (a number)", v)
		}
		if v == a.VersionID {
			return invalid("additionalVersionWeight: version %s is the alias's versionId", v)
		}
		if !(w >= 0 && w <= 1) {
			return invalid("additionalVersionWeight: weight %v of version %s is out of range: it must be between 0 and 1", w, v)
		}
	}
	return nil
}

// Versions returns the versions the alias routes to, main first.
func (a *Alias) Versions() []string {
	out := []string{a.VersionID}
	extra := make([]string, 0, len(a.AdditionalVersionWeight))
	for v := range a.AdditionalVersionWeight {
		extra = append(extra, v)
	}
	sort.Strings(extra)
	return append(out, extra...)
}

// Pick chooses the version a request goes to, given u uniform in [0, 1):
// an additional version with weight w gets the requests with u < w.
func (a *Alias) Pick(u float64) string {
	for v, w := range a.AdditionalVersionWeight {
		if u < float64(w) {
			return v
		}
	}
	return a.VersionID
}

// String names the alias for messages.
func (a *Alias) String() string { return fmt.Sprintf("alias %q", a.AliasName) }
