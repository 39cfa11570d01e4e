package registry

import "strings"

// Password encodes a role's temporary credentials as the password the
// token endpoint expects with username = the temporary access key id:
// "<secretAccessKey>:<sessionToken>". Secrets issued by iam never contain
// ':', so the first ':' separates the two.
func Password(secretAccessKey, sessionToken string) string {
	return secretAccessKey + ":" + sessionToken
}

// splitPassword undoes Password; ok is false when there is no session
// token.
func splitPassword(password string) (secret, sessionToken string, ok bool) {
	secret, sessionToken, ok = strings.Cut(password, ":")
	return secret, sessionToken, ok && secret != "" && sessionToken != ""
}

// CredentialsFunc returns a callback in the shape containerd's docker
// resolver wants (docker.WithAuthCreds) that answers username and password
// for registry host (host:port, as in the image reference) and empty
// credentials for every other host, so credentials for one registry are
// never sent to another.
func CredentialsFunc(registryHost, username, password string) func(host string) (string, string, error) {
	return func(host string) (string, string, error) {
		if host != registryHost {
			return "", "", nil
		}
		return username, password, nil
	}
}

// TemporaryCredentialsFunc is CredentialsFunc for a role's temporary
// credentials: username = accessKeyID, password = Password(secret, token).
func TemporaryCredentialsFunc(registryHost, accessKeyID, secretAccessKey, sessionToken string) func(host string) (string, string, error) {
	return CredentialsFunc(registryHost, accessKeyID, Password(secretAccessKey, sessionToken))
}
