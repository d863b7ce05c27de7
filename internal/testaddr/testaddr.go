// Package testaddr hands tests loopback addresses for servers they start,
// stop and start again on the same address.
//
// A port chosen by listening on ":0" comes from the kernel's ephemeral
// range, so while its server is down the kernel may give it to any other
// ":0" listener (an embedded NATS client port, say) or outgoing connection,
// and the restart fails with "address already in use". Ports from below that
// range are handed out only when asked for by number.
package testaddr

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Loopback returns a free 127.0.0.1 address whose port lies in the 10,000
// ports just below the ephemeral range.
func Loopback(t testing.TB) string {
	t.Helper()
	low := 32768 // Linux's default start of the ephemeral range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11024 {
				low = n
			}
		}
	}
	for range 200 {
		addr := fmt.Sprintf("127.0.0.1:%d", low-10000+rand.IntN(10000))
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("testaddr: no free port below the ephemeral range")
	return ""
}
