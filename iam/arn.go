package iam

import (
	"fmt"
	"regexp"
	"strings"
)

const arnPrefix = "acs:ram::"

var (
	// roleNameRE matches what api.Validate accepts for the name part of a
	// role ARN; validRoleName also refuses "." and "..".
	roleNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	accountRE  = regexp.MustCompile(`^[0-9A-Za-z_-]*$`)
)

// RoleARN returns the ARN of the role name in account:
// acs:ram::<account>:role/<name>.
func RoleARN(account, name string) string {
	return arnPrefix + account + ":role/" + name
}

// ParseRoleARN splits a role ARN of the form acs:ram::<account>:role/<name>
// into its account and role name. A malformed ARN gives an error wrapping
// ErrInvalidRole.
func ParseRoleARN(arn string) (account, name string, err error) {
	rest, ok := strings.CutPrefix(arn, arnPrefix)
	if !ok {
		return "", "", fmt.Errorf("role ARN %q: want prefix %q: %w", arn, arnPrefix, ErrInvalidRole)
	}
	account, name, ok = strings.Cut(rest, ":role/")
	if !ok || !accountRE.MatchString(account) || !validRoleName(name) {
		return "", "", fmt.Errorf("role ARN %q: want acs:ram::<account>:role/<name>: %w", arn, ErrInvalidRole)
	}
	return account, name, nil
}

// validRoleName reports whether name is 1-64 of [A-Za-z0-9._-] and not "."
// or "..": those read as path segments wherever a role name becomes part of
// a URL path (GET/DELETE /roles/<name>), so a role so named could be
// created but never addressed again.
func validRoleName(name string) bool {
	return roleNameRE.MatchString(name) && name != "." && name != ".."
}
