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
	commands["bench"] = command{"load-test a running server (bench publish)", runBench}
}

func runBench(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "publish" {
		fmt.Fprintln(stderr, "Usage: nagare bench publish [flags]   (run with -h for flags)")
		return 2
	}
	fs := flag.NewFlagSet("nagare bench publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	devices := fs.Int("devices", 10, "devices to create and publish from")
	conc := fs.Int("concurrency", 16, "concurrent publishers")
	dur := fs.Duration("duration", 10*time.Second, "how long to publish")
	size := fs.Int("size", 64, "payload size in bytes (a JSON object padded to this size)")
	target := fs.String("target", "", "instead of nagare devices, POST the payload to this URL (to measure a peer such as Node-RED the same way)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: nagare bench publish [flags]\n\nCreates a Harvest-enabled group and devices on the server named by\nNAGARE_ENDPOINT (logging in with NAGARE_AUTH_KEY_ID/NAGARE_AUTH_KEY), publishes\nJSON from every device for -duration, and reports publishes/s and latency\npercentiles. Every publish is acknowledged only after it is durably stored.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *devices < 1 || *conc < 1 || *dur <= 0 || *size < 16 {
		fmt.Fprintln(stderr, "nagare bench publish: -devices and -concurrency must be ≥ 1, -duration > 0, -size ≥ 16")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := client.New("")
	var urls []string
	if *target != "" {
		urls = []string{*target}
		c.Endpoint = ""
	} else {
		var err error
		c, err = client.FromEnv(ctx, os.Getenv)
		if err == nil && c.APIKey == "" {
			err = errors.New("set NAGARE_AUTH_KEY_ID and NAGARE_AUTH_KEY (e.g. from data/root-auth-key.json)")
		}
		if err == nil {
			urls, err = setupBenchDevices(ctx, c, *devices)
		}
		if err != nil {
			fmt.Fprintf(stderr, "nagare bench publish: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "publishing %d-byte JSON from %d device(s) with %d workers for %s …\n", *size, len(urls), *conc, *dur)
	r := runPublishLoad(ctx, c.HTTP, urls, *conc, *dur, *size)
	r.print(stdout)
	if r.ok == 0 {
		return 1
	}
	return 0
}

func setupBenchDevices(ctx context.Context, c *client.Client, n int) ([]string, error) {
	var g struct {
		GroupID string `json:"groupId"`
	}
	err := c.JSON(ctx, "POST", "/v1/groups", map[string]any{
		"tags":          map[string]string{"name": "bench-" + time.Now().Format("20060102-150405")},
		"configuration": map[string]any{"SoracomHarvest": map[string]any{"enabled": true}},
	}, &g)
	if err != nil {
		return nil, fmt.Errorf("creating group: %w", err)
	}
	var urls []string
	for i := 0; i < n; i++ {
		var d struct {
			DeviceID     string `json:"device_id"`
			DeviceSecret string `json:"deviceSecret"`
		}
		if err := c.JSON(ctx, "POST", "/v1/devices", map[string]any{"tags": map[string]string{"name": fmt.Sprintf("bench-%d", i)}}, &d); err != nil {
			return nil, fmt.Errorf("creating device: %w", err)
		}
		if err := c.JSON(ctx, "POST", "/v1/devices/"+d.DeviceID+"/set_group", map[string]string{"groupId": g.GroupID}, nil); err != nil {
			return nil, fmt.Errorf("set_group: %w", err)
		}
		urls = append(urls, c.Endpoint+"/v1/devices/"+url.PathEscape(d.DeviceID)+"/publish?device_secret="+url.QueryEscape(d.DeviceSecret))
	}
	return urls, nil
}

type loadResult struct {
	ok, failed int64
	elapsed    time.Duration
	lat        []time.Duration
	firstErr   string
}

func runPublishLoad(ctx context.Context, hc *http.Client, urls []string, conc int, dur time.Duration, size int) *loadResult {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var all []time.Duration
	var firstErr string
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var lat []time.Duration
			for seq := 0; ctx.Err() == nil; seq++ {
				u := urls[(w+seq*conc)%len(urls)]
				body := benchPayload(w, seq, size)
				t0 := time.Now()
				err := postOnce(ctx, hc, u, body)
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
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	return &loadResult{ok: ok.Load(), failed: failed.Load(), elapsed: time.Since(start), lat: all, firstErr: firstErr}
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

func (r *loadResult) print(w io.Writer) {
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	pct := func(p float64) time.Duration {
		if len(r.lat) == 0 {
			return 0
		}
		return r.lat[min(len(r.lat)-1, int(p*float64(len(r.lat))))]
	}
	rate := float64(r.ok) / r.elapsed.Seconds()
	fmt.Fprintf(w, "publishes: %d ok, %d failed in %.1fs\n", r.ok, r.failed, r.elapsed.Seconds())
	fmt.Fprintf(w, "throughput: %.0f publishes/s\n", rate)
	fmt.Fprintf(w, "latency: p50 %s  p90 %s  p99 %s  max %s\n", pct(.50).Round(time.Microsecond), pct(.90).Round(time.Microsecond), pct(.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	if r.firstErr != "" {
		fmt.Fprintf(w, "first error: %s\n", r.firstErr)
	}
}
