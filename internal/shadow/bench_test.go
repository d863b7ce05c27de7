package shadow_test

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/servertest"
)

// BenchmarkShadowUpdate measures shadow updates per second as a device
// sends them (a NATS request on $aws.things.<thing>.shadow.update, answered
// once the document is stored in KV and accepted/delta/documents are
// published): "things" spreads updates over one thing per goroutine,
// "one-thing" has every goroutine update the same document (compare-and-set
// retries).
func BenchmarkShadowUpdate(b *testing.B) {
	ts := servertest.Start(b)
	nc := ts.Bus.NC
	for _, c := range []struct {
		name   string
		shared bool
	}{{"things", false}, {"one-thing", true}} {
		b.Run(c.name, func(b *testing.B) {
			var g, n atomic.Int64
			b.SetParallelism(4)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				thing := fmt.Sprintf("bench-%s-%d", c.name, g.Add(1))
				if c.shared {
					thing = "bench-shared"
				}
				subject := "$aws.things." + thing + ".shadow.update"
				for pb.Next() {
					i := n.Add(1)
					body := fmt.Appendf(nil, `{"state":{"reported":{"n":%d},"desired":{"n":%d}}}`, i, i)
					m, err := nc.Request(subject, body, 10*time.Second)
					if err != nil {
						b.Fatal(err)
					}
					if !bytes.Contains(m.Data, []byte(`"version"`)) || bytes.Contains(m.Data, []byte(`"code"`)) {
						b.Fatalf("not accepted: %s", m.Data)
					}
				}
			})
			b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "updates/s")
		})
	}
}
