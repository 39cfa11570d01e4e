package instance

import (
	"context"
	"errors"
)

// cleanupHost removes what carries the Manager's name on the host but
// not in containerd: the firewall.
func (m *Manager) cleanupHost(ctx context.Context) error {
	var errs []error
	if err := m.net.firewall.remove(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
