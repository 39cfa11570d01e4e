package iam

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// Role is a named set of repositories that functions assuming it may pull.
type Role struct {
	// Name is the role's name, 1-64 of [A-Za-z0-9._-]. Required.
	Name string `json:"roleName"`
	// ARN is acs:ram::<account>:role/<name>; set by the Store, ignored on
	// create.
	ARN string `json:"arn"`
	// Repositories are the repository patterns the role may pull, matched
	// against the repository path without the registry host (for
	// 127.0.0.1:5000/examples/hello that is examples/hello). A pattern uses
	// path.Match syntax, where * does not cross a slash (examples/* matches
	// examples/hello, not examples/a/b); a pattern P/** matches every
	// repository below a path matching P, at any depth (examples/** matches
	// examples/a and examples/a/b, not examples itself), and ** alone
	// matches every repository. Empty means the role may pull nothing.
	Repositories []string `json:"repositories"`
	// Description is free text.
	Description string `json:"description,omitempty"`
	// CreatedTime is set by the Store on create.
	CreatedTime time.Time `json:"createdTime"`
}

// Allows reports whether the role may pull repository (a repository path
// without registry host, e.g. examples/hello).
func (r Role) Allows(repository string) bool {
	return MatchRepository(r.Repositories, repository)
}

// MatchRepository reports whether repository matches any of patterns, with
// the pattern syntax documented on Role.Repositories.
func MatchRepository(patterns []string, repository string) bool {
	if repository == "" {
		return false
	}
	for _, p := range patterns {
		if p == "**" {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, "/**"); ok {
			if matchAncestor(prefix, repository) {
				return true
			}
			continue
		}
		if ok, _ := path.Match(p, repository); ok {
			return true
		}
	}
	return false
}

// matchAncestor reports whether some strict ancestor path of repository
// matches prefix.
func matchAncestor(prefix, repository string) bool {
	for dir := path.Dir(repository); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if ok, _ := path.Match(prefix, dir); ok {
			return true
		}
	}
	return false
}

// validate checks the fields a caller sets on create.
func (r Role) validate() error {
	if !validRoleName(r.Name) {
		return fmt.Errorf("role name %q: want 1-64 of [A-Za-z0-9._-], not . or ..: %w", r.Name, ErrInvalidRole)
	}
	for _, p := range r.Repositories {
		if p == "" {
			return fmt.Errorf("role %s: empty repository pattern: %w", r.Name, ErrInvalidRole)
		}
		if _, err := path.Match(strings.TrimSuffix(p, "/**"), "x"); err != nil {
			return fmt.Errorf("role %s: repository pattern %q: %v: %w", r.Name, p, err, ErrInvalidRole)
		}
	}
	return nil
}
