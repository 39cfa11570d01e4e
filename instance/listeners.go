package instance

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// tcpStateListen is the st column of a listening socket in /proc/net/tcp.
const tcpStateListen = "0A"

// loopbackListener reports a socket in the network namespace of pid that
// listens on port at a loopback address only, such as 127.0.0.1:9000. Such
// a server can never answer the probe, which comes from outside the
// instance, so the start can fail at once instead of waiting out its limit.
func loopbackListener(pid uint32, port int) (string, bool) {
	for _, file := range []string{"tcp", "tcp6"} {
		if addr, ok := scanLoopbackListener(fmt.Sprintf("/proc/%d/net/%s", pid, file), port); ok {
			return addr, true
		}
	}
	return "", false
}

func scanLoopbackListener(path string, port int) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "  sl  local_address rem_address   st ..."
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != tcpStateListen {
			continue
		}
		hexAddr, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || int(p) != port {
			continue
		}
		switch hexAddr {
		case "0100007F":
			return fmt.Sprintf("127.0.0.1:%d", port), true
		case "00000000000000000000000001000000":
			return fmt.Sprintf("[::1]:%d", port), true
		}
	}
	return "", false
}
