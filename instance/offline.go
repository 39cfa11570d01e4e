package instance

import (
	"context"
	"fmt"
	"net/netip"
)

// Instances without internet access (FC's internetAccess: false,
// Spec.Offline). Their address is in the firewall's offline4 set from
// before the container starts until its namespace is detached, and the
// forward chain rejects every packet from the bridge with a source in the
// set: such an instance reaches nothing beyond the bridge. Everything else
// is as for any instance: the host still opens connections to it (probes,
// invocations; those are not forwarded, and their replies are accepted as
// established), and it still reaches neither the host nor another
// instance. fcd serves no DNS to instances, so name lookups, which go to
// the resolvers of the host's or the function's resolv.conf beyond the
// bridge, fail too. Instances have IPv4 addresses only (the CNI range is
// IPv4), so an IPv4 set covers everything they can send to be routed.

// setOffline puts addr, the address of network namespace id, in the
// offline4 set. Starts of instances with internet access run no nft.
func (f *firewall) setOffline(ctx context.Context, id string, addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.installed {
		return fmt.Errorf("offline %s: the firewall is not installed", addr)
	}
	if err := nft(ctx, fmt.Sprintf("add element inet %s offline4 { %s }\n", f.table, addr)); err != nil {
		return fmt.Errorf("offline %s: %w", addr, err)
	}
	if f.offline == nil {
		f.offline = map[string]netip.Addr{}
	}
	f.offline[id] = addr
	return nil
}

// clearOffline takes the address of network namespace id out of the
// offline4 set, if setOffline put it there. detach calls it before it
// releases the address: one that cannot be taken out of the set is never
// handed to another instance, which would otherwise be offline too.
func (f *firewall) clearOffline(ctx context.Context, id string) error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	addr, ok := f.offline[id]
	if !ok {
		return nil
	}
	if f.installed {
		if err := nft(ctx, fmt.Sprintf("delete element inet %s offline4 { %s }\n", f.table, addr)); err != nil {
			return fmt.Errorf("online %s: %w", addr, err)
		}
	}
	delete(f.offline, id)
	return nil
}
