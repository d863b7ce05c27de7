package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"time"

	"github.com/nagare-iot/nagare/internal/client"
)

// bench flow: device publish → a 3-action flow → webhook to a sink that
// this process runs, measuring what reaches the sink and how late.

func runBenchFlow(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nagare bench flow", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var bf benchFlags
	bf.register(fs, "instead of nagare, POST the payloads to this URL; the peer must forward them to the sink URL printed (see -sink-listen)")
	sinkAddr := fs.String("sink-listen", "127.0.0.1:0", "address of the sink (an HTTP server in this process that receives the flow's webhooks); fix it when a peer must be configured with it")
	wait := fs.Duration("wait", 60*time.Second, "after publishing, how long to wait for events still on their way (the wait restarts whenever one arrives)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: nagare bench flow [flags]

Measures flow throughput and end-to-end latency of "device publish → 3-action
flow → webhook". It creates a Harvest-enabled group and devices on the server
named by NAGARE_ENDPOINT (logging in with NAGARE_AUTH_KEY_ID/NAGARE_AUTH_KEY)
and applies an app: channel in (device source: the group) → enrich (republish
with a transform) → check → filter (republish with a condition) → out →
deliver (webhook POST to the sink). Every device publishes JSON carrying its
send time for -duration; the sink records, for each event, now − send time.
It then waits until every accepted publish has reached the sink and reports
publishes/s accepted, deliveries/s, end-to-end latency percentiles, and lost
(accepted but never delivered) and duplicate events.

With -target it POSTs the same payloads to a peer (such as Node-RED) that
must do the same work and POST the result to the sink.

Flags:`)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if err := bf.check(); err != nil {
		fmt.Fprintf(stderr, "nagare bench flow: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "nagare bench flow: %v\n", err)
		return 1
	}

	sink, err := startFlowSink(*sinkAddr)
	if err != nil {
		return fail(err)
	}
	defer sink.close()
	fmt.Fprintf(stdout, "sink: %s\n", sink.url)

	c := client.New("")
	var urls []string
	if bf.target != "" {
		urls = []string{bf.target}
	} else {
		c, err = benchClient(ctx)
		if err != nil {
			return fail(err)
		}
		var group, app string
		group, urls, err = setupBenchDevices(ctx, c, bf.devices)
		if err == nil {
			app, err = applyBenchFlow(ctx, c, group, sink.url)
		}
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "app %s: device → enrich → filter → webhook (runs: GET /v1/flux/apps/%s/runs)\n", app, app)
	}

	var mu sync.Mutex
	accepted := map[int64]bool{}
	fmt.Fprintf(stdout, "publishing from %d device(s) with %d workers for %s%s …\n", len(urls), bf.conc, bf.dur, bf.rateNote())
	load := runPublishLoad(ctx, c.HTTP, urls, &bf,
		func(w, seq int) []byte { return flowPayload(flowEventID(w, seq, bf.conc), time.Now()) },
		func(w, seq int) {
			mu.Lock()
			accepted[flowEventID(w, seq, bf.conc)] = true
			mu.Unlock()
		})
	fmt.Fprintf(stdout, "waiting for %d accepted event(s) to reach the sink …\n", load.ok)
	sink.waitFor(ctx, accepted, *wait) // the load is over: accepted no longer changes
	r := sink.result(load, accepted)
	load.print(stdout)
	r.print(stdout)
	if load.ok == 0 || r.lost > 0 {
		return 1
	}
	return 0
}

// flowEventID numbers a publish uniquely across workers.
func flowEventID(w, seq, conc int) int64 { return int64(seq)*int64(conc) + int64(w) }

// flowPayload is what a device publishes: an id, the send time in unix
// nanoseconds and a temperature.
func flowPayload(id int64, sent time.Time) []byte {
	return fmt.Appendf(nil, `{"i":%d,"sent":%d,"t":%.1f}`, id, sent.UnixNano(), 15+float64(id%200)/10)
}

// benchFlowApp is the flow under test. The webhook body is left out: the
// action sends its input (the enriched payload) as JSON.
const benchFlowApp = `name: %s
description: nagare bench flow — device publish → enrich → filter → webhook
channels:
  in:
    sources:
      - device: {groupId: %q}
    actions:
      - name: enrich
        republish: {}
        output:
          channel: check
          transform:
            sent: "${payload.sent}"
            i: "${payload.i}"
            celsius: "${payload.t}"
            fahrenheit: "${payload.t * 9 / 5 + 32}"
  check:
    actions:
      - name: filter
        condition: payload.celsius > -100
        republish: {}
        output: {channel: out}
  out:
    actions:
      - name: deliver
        webhook: {url: %q}
`

func applyBenchFlow(ctx context.Context, c *client.Client, group, sinkURL string) (string, error) {
	name := "bench-flow-" + time.Now().Format("20060102-150405")
	src := []byte(fmt.Sprintf(benchFlowApp, name, group, sinkURL))
	if _, _, err := putDefinition(ctx, c, "/v1/flux/apps", name, src); err != nil {
		return "", fmt.Errorf("applying the bench app: %w", err)
	}
	return name, nil
}

// flowSink receives the flow's webhooks.
type flowSink struct {
	url  string
	srv  *http.Server
	done chan struct{}

	mu       sync.Mutex
	got      map[int64]int // deliveries per event id
	lat      []time.Duration
	last     time.Time
	bad      int64
	firstBad string
	arrived  chan struct{} // signalled (without blocking) on every delivery
}

func startFlowSink(addr string) (*flowSink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := &flowSink{url: "http://" + ln.Addr().String() + "/sink", got: map[int64]int{},
		done: make(chan struct{}), arrived: make(chan struct{}, 1)}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.receive), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

func (s *flowSink) close() {
	_ = s.srv.Close()
	<-s.done
}

func (s *flowSink) receive(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var ev struct{ I, Sent json.Number }
	if err == nil {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		err = d.Decode(&ev)
	}
	id, errI := numberInt(ev.I)
	sent, errS := numberInt(ev.Sent)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err = errors.Join(err, errI, errS); err != nil {
		s.bad++
		if s.firstBad == "" {
			s.firstBad = fmt.Sprintf("%v: %.200s", err, b)
		}
		http.Error(w, "want a JSON object with i and sent", http.StatusBadRequest)
		return
	}
	s.got[id]++
	if s.got[id] == 1 {
		s.lat = append(s.lat, now.Sub(time.Unix(0, sent)))
		s.last = now
	}
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusOK)
}

// numberInt reads a JSON number (or a string holding one) that may have
// passed through float64 (JavaScript, expressions): 1.7e18 is accepted.
func numberInt(n json.Number) (int64, error) {
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", n)
	}
	return int64(f), nil
}

// waitFor returns once every accepted event has arrived, or no event has
// arrived for idle.
func (s *flowSink) waitFor(ctx context.Context, accepted map[int64]bool, idle time.Duration) {
	var missing []int64
	for id := range accepted {
		missing = append(missing, id)
	}
	t := time.NewTimer(idle)
	defer t.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		n := 0
		for _, id := range missing {
			if s.got[id] == 0 {
				missing[n] = id
				n++
			}
		}
		s.mu.Unlock()
		if missing = missing[:n]; n == 0 {
			return
		}
		select {
		case <-s.arrived:
			t.Reset(idle)
		case <-tick.C:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

type flowResult struct {
	delivered, lost, dups, unacked, bad int64
	window                              time.Duration
	lat                                 []time.Duration
	firstBad                            string
}

func (s *flowSink) result(load *loadResult, accepted map[int64]bool) *flowResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &flowResult{bad: s.bad, firstBad: s.firstBad, lat: s.lat}
	for id, n := range s.got {
		r.delivered++
		r.dups += int64(n - 1)
		if !accepted[id] {
			r.unacked++
		}
	}
	for id := range accepted {
		if s.got[id] == 0 {
			r.lost++
		}
	}
	if !s.last.IsZero() {
		r.window = s.last.Sub(load.start)
	}
	return r
}

func (r *flowResult) print(w io.Writer) {
	rate := 0.0
	if r.window > 0 {
		rate = float64(r.delivered) / r.window.Seconds()
	}
	fmt.Fprintf(w, "delivered: %d events in %.1fs (first publish → last delivery)\n", r.delivered, r.window.Seconds())
	fmt.Fprintf(w, "flow throughput: %.0f deliveries/s\n", rate)
	fmt.Fprintf(w, "end-to-end latency: %s\n", percentiles(r.lat))
	fmt.Fprintf(w, "lost: %d  duplicates: %d\n", r.lost, r.dups)
	if r.unacked > 0 {
		fmt.Fprintf(w, "delivered without a 2xx answer to the publish: %d (request failed or timed out on the client side)\n", r.unacked)
	}
	if r.bad > 0 {
		fmt.Fprintf(w, "sink rejected %d request(s); first: %s\n", r.bad, r.firstBad)
	}
}
