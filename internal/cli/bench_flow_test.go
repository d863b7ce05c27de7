package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nagare-iot/nagare/internal/servertest"
)

// TestBenchFlow runs a short bench flow against a real server: every
// accepted publish must reach the sink. No timing is asserted.
func TestBenchFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	ts := servertest.Start(t)
	t.Setenv("NAGARE_ENDPOINT", ts.URL)
	t.Setenv("NAGARE_AUTH_KEY_ID", servertest.RootKeyID)
	t.Setenv("NAGARE_AUTH_KEY", servertest.RootKey)
	var out, errb bytes.Buffer
	code := Main([]string{"bench", "flow", "-duration", "1s", "-concurrency", "2", "-devices", "2", "-wait", "30s"}, &out, &errb)
	t.Logf("stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, want := range []string{"sink: http://127.0.0.1:", "app bench-flow-", "publishes: ", "flow throughput: ", "end-to-end latency: p50 ", "lost: 0  duplicates: 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "publishes: 0 ok") {
		t.Error("nothing was published")
	}
}
