package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nagare-iot/nagare/internal/client"
)

func init() {
	commands["bench"] = command{"load-test a running server (bench publish | bench flow | bench mqtt)", runBench}
}

func runBench(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "publish":
			return runBenchPublish(args[1:], stdout, stderr)
		case "flow":
			return runBenchFlow(args[1:], stdout, stderr)
		case "mqtt":
			return runBenchMQTT(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintln(stderr, "Usage: nagare bench publish|flow|mqtt [flags]   (run with -h for flags)")
	return 2
}

// benchFlags are the load settings bench publish and bench flow share.
type benchFlags struct {
	devices, conc int
	dur           time.Duration
	rate          float64
	target        string
}

func (b *benchFlags) register(fs *flag.FlagSet, targetDoc string) {
	fs.IntVar(&b.devices, "devices", 10, "devices to create and publish from")
	fs.IntVar(&b.conc, "concurrency", 16, "concurrent publishers")
	fs.DurationVar(&b.dur, "duration", 10*time.Second, "how long to publish")
	fs.Float64Var(&b.rate, "rate", 0, "publishes per second over all workers (0: as fast as the server answers)")
	fs.StringVar(&b.target, "target", "", targetDoc)
}

func (b *benchFlags) check() error {
	if b.devices < 1 || b.conc < 1 || b.dur <= 0 || b.rate < 0 {
		return errors.New("-devices and -concurrency must be ≥ 1, -duration > 0, -rate ≥ 0")
	}
	return nil
}

func (b *benchFlags) rateNote() string {
	if b.rate > 0 {
		return fmt.Sprintf(" at %g/s", b.rate)
	}
	return ""
}

// benchClient logs in with the auth env (bench commands need an account).
func benchClient(ctx context.Context) (*client.Client, error) {
	c, err := client.FromEnv(ctx, os.Getenv)
	if err == nil && c.APIKey == "" {
		err = errors.New("set NAGARE_AUTH_KEY_ID and NAGARE_AUTH_KEY (e.g. from data/root-auth-key.json)")
	}
	return c, err
}

func runBenchPublish(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nagare bench publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var bf benchFlags
	bf.register(fs, "instead of nagare devices, POST the payload to this URL (to measure a peer such as Node-RED the same way)")
	size := fs.Int("size", 64, "payload size in bytes (a JSON object padded to this size)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: nagare bench publish [flags]\n\nCreates a Harvest-enabled group and devices on the server named by\nNAGARE_ENDPOINT (logging in with NAGARE_AUTH_KEY_ID/NAGARE_AUTH_KEY), publishes\nJSON from every device for -duration, and reports publishes/s and latency\npercentiles. Every publish is acknowledged only after it is durably stored.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	err := bf.check()
	if err == nil && *size < 16 {
		err = errors.New("-size must be ≥ 16")
	}
	if err != nil {
		fmt.Fprintf(stderr, "nagare bench publish: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := client.New("")
	var urls []string
	if bf.target != "" {
		urls = []string{bf.target}
	} else {
		c, err = benchClient(ctx)
		if err == nil {
			_, urls, err = setupBenchDevices(ctx, c, bf.devices)
		}
		if err != nil {
			fmt.Fprintf(stderr, "nagare bench publish: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "publishing %d-byte JSON from %d device(s) with %d workers for %s%s …\n", *size, len(urls), bf.conc, bf.dur, bf.rateNote())
	r := runPublishLoad(ctx, c.HTTP, urls, &bf, func(w, seq int) []byte { return benchPayload(w, seq, *size) }, nil)
	r.print(stdout)
	if r.ok == 0 {
		return 1
	}
	return 0
}

// setupBenchDevices creates a Harvest-enabled group with n devices and
// returns the group and each device's publish URL.
func setupBenchDevices(ctx context.Context, c *client.Client, n int) (groupID string, urls []string, err error) {
	var g struct {
		GroupID string `json:"groupId"`
	}
	err = c.JSON(ctx, "POST", "/v1/groups", map[string]any{
		"tags":          map[string]string{"name": "bench-" + time.Now().Format("20060102-150405")},
		"configuration": map[string]any{"SoracomHarvest": map[string]any{"enabled": true}},
	}, &g)
	if err != nil {
		return "", nil, fmt.Errorf("creating group: %w", err)
	}
	for i := 0; i < n; i++ {
		var d struct {
			DeviceID     string `json:"device_id"`
			DeviceSecret string `json:"deviceSecret"`
		}
		if err := c.JSON(ctx, "POST", "/v1/devices", map[string]any{"tags": map[string]string{"name": fmt.Sprintf("bench-%d", i)}}, &d); err != nil {
			return "", nil, fmt.Errorf("creating device: %w", err)
		}
		if err := c.JSON(ctx, "POST", "/v1/devices/"+d.DeviceID+"/set_group", map[string]string{"groupId": g.GroupID}, nil); err != nil {
			return "", nil, fmt.Errorf("set_group: %w", err)
		}
		urls = append(urls, c.Endpoint+"/v1/devices/"+url.PathEscape(d.DeviceID)+"/publish?device_secret="+url.QueryEscape(d.DeviceSecret))
	}
	return g.GroupID, urls, nil
}

type loadResult struct {
	ok, failed int64
	start      time.Time
	elapsed    time.Duration
	lat        []time.Duration
	firstErr   string
}

// runPublishLoad POSTs body(worker, seq) from b.conc workers, round-robin
// over urls, for b.dur, at most b.rate per second if set; requests under
// way at the end are let finish, so every request the server answered is
// counted. accepted (optional) is called after each 2xx answer.
func runPublishLoad(ctx context.Context, hc *http.Client, urls []string, b *benchFlags, body func(w, seq int) []byte, accepted func(w, seq int)) *loadResult {
	conc := b.conc
	var ok, failed, issued atomic.Int64
	var mu sync.Mutex
	var all []time.Duration
	var firstErr string
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(b.dur)
	// pace waits for the next request's turn (its due time at -rate); it
	// reports false when that falls after the end.
	pace := func() bool {
		if b.rate <= 0 {
			return true
		}
		due := start.Add(time.Duration(float64(issued.Add(1)-1) / b.rate * float64(time.Second)))
		if !due.Before(end) {
			return false
		}
		select {
		case <-time.After(time.Until(due)):
			return true
		case <-ctx.Done():
			return false
		}
	}
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var lat []time.Duration
			for seq := 0; ctx.Err() == nil && time.Now().Before(end) && pace(); seq++ {
				u := urls[(w+seq*conc)%len(urls)]
				data := body(w, seq)
				t0 := time.Now()
				err := postOnce(ctx, hc, u, data)
				if ctx.Err() != nil {
					break
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if firstErr == "" {
						firstErr = err.Error()
					}
					mu.Unlock()
					continue
				}
				lat = append(lat, time.Since(t0))
				ok.Add(1)
				if accepted != nil {
					accepted(w, seq)
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	return &loadResult{ok: ok.Load(), failed: failed.Load(), start: start, elapsed: time.Since(start), lat: all, firstErr: firstErr}
}

func benchPayload(w, seq, size int) []byte {
	b := fmt.Appendf(nil, `{"worker":%d,"seq":%d,"temp":21.5,"pad":"`, w, seq)
	if pad := size - len(b) - 2; pad > 0 {
		b = append(b, bytes.Repeat([]byte("x"), pad)...)
	}
	return append(b, '"', '}')
}

func postOnce(ctx context.Context, hc *http.Client, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, "POST", u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", res.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

func (r *loadResult) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r *loadResult) print(w io.Writer) {
	fmt.Fprintf(w, "publishes: %d ok, %d failed in %.1fs\n", r.ok, r.failed, r.elapsed.Seconds())
	fmt.Fprintf(w, "throughput: %.0f publishes/s\n", r.rate())
	fmt.Fprintf(w, "latency: %s\n", percentiles(r.lat))
	if r.firstErr != "" {
		fmt.Fprintf(w, "first error: %s\n", r.firstErr)
	}
}

// percentiles sorts lat and describes p50, p90, p99 and max.
func percentiles(lat []time.Duration) string {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(time.Microsecond)
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s", pct(.50), pct(.90), pct(.99), pct(1))
}
