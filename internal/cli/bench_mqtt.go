package cli

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/nagare-iot/nagare/internal/client"
)

// bench mqtt: MQTT publish load, two ways.
//
//	-mode harvest  devices publish on devices/<id>/data (their own login)
//	               and the bench waits until nagare has stored every
//	               acknowledged message in Harvest Data (it reads
//	               nagare_mqtt_data_stored_total from /metrics).
//	-mode pubsub   publishers → one subscriber through the broker: the
//	               plain broker job, the same client code against nagare
//	               (logged in as the bench account) or any other broker
//	               (-anonymous, e.g. mosquitto).
type mqttBench struct {
	broker, mode string
	qos          int
	pubs, size   int
	window       int
	dur          time.Duration
	rate         float64
	anonymous    bool
	topic        string
}

func runBenchMQTT(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nagare bench mqtt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var b mqttBench
	fs.StringVar(&b.broker, "broker", "", "MQTT broker URL, tcp://host:port or ws://host:port/mqtt (default: NAGARE_ENDPOINT's host, port 1883)")
	fs.StringVar(&b.mode, "mode", "harvest", "harvest (device publish → stored in Harvest Data) or pubsub (publishers → one subscriber)")
	fs.IntVar(&b.qos, "qos", 1, "MQTT QoS of publishes and the subscription: 0 or 1")
	fs.IntVar(&b.pubs, "publishers", 16, "publishing clients (harvest: one device each)")
	fs.IntVar(&b.size, "size", 64, "payload size in bytes (harvest: a JSON object padded to this size)")
	fs.IntVar(&b.window, "window", 100, "QoS 1 publishes each publisher has in flight (unacknowledged) at most")
	fs.DurationVar(&b.dur, "duration", 10*time.Second, "how long to publish")
	fs.Float64Var(&b.rate, "rate", 0, "publishes per second over all publishers (0: as fast as the broker takes them); below saturation the latency is the broker's, not queueing")
	fs.BoolVar(&b.anonymous, "anonymous", false, "pubsub: connect without credentials (a broker such as mosquitto) instead of logging in to nagare")
	fs.StringVar(&b.topic, "topic", "devices/bench-pubsub", "pubsub: topic prefix (publisher i publishes on <prefix>/<i>, the subscriber takes <prefix>/#)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: nagare bench mqtt [flags]\n\nMQTT publish load against the server named by NAGARE_ENDPOINT (logging in\nwith NAGARE_AUTH_KEY_ID/NAGARE_AUTH_KEY).\n  -mode harvest: creates a Harvest-enabled group and -publishers devices; each\n    device publishes JSON on devices/<id>/data for -duration; reports publishes/s\n    (QoS 1: acknowledged) and how fast and how completely nagare stored them.\n  -mode pubsub: -publishers clients publish to one subscriber; reports\n    published/s, received/s, loss and latency. With -anonymous it measures\n    any MQTT broker (e.g. mosquitto) with the same client code.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	var err error
	switch {
	case b.mode != "harvest" && b.mode != "pubsub":
		err = errors.New("-mode must be harvest or pubsub")
	case b.qos != 0 && b.qos != 1:
		err = errors.New("-qos must be 0 or 1")
	case b.pubs < 1 || b.dur <= 0 || b.window < 1 || b.rate < 0:
		err = errors.New("-publishers and -window must be ≥ 1, -duration > 0, -rate ≥ 0")
	case b.size < 24:
		err = errors.New("-size must be ≥ 24")
	case b.mode == "harvest" && b.anonymous:
		err = errors.New("-anonymous is for -mode pubsub (devices log in with their secrets)")
	}
	if err != nil {
		fmt.Fprintf(stderr, "nagare bench mqtt: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var c *client.Client
	if !b.anonymous {
		if c, err = benchClient(ctx); err != nil {
			fmt.Fprintf(stderr, "nagare bench mqtt: %v\n", err)
			return 1
		}
	}
	if b.broker == "" {
		host := "127.0.0.1"
		if c != nil {
			if u, err := url.Parse(c.Endpoint); err == nil && u.Hostname() != "" {
				host = u.Hostname()
			}
		}
		b.broker = "tcp://" + host + ":1883"
	}
	if b.mode == "harvest" {
		err = b.harvest(ctx, c, stdout)
	} else {
		err = b.pubsub(ctx, c, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "nagare bench mqtt: %v\n", err)
		return 1
	}
	return 0
}

func (b *mqttBench) connect(clientID, user, pass string, onMsg paho.MessageHandler) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(b.broker).SetClientID(clientID).SetProtocolVersion(4).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).
		SetKeepAlive(60 * time.Second).SetWriteTimeout(30 * time.Second).SetOrderMatters(false).
		SetMaxResumePubInFlight(b.window)
	if user != "" {
		o.SetUsername(user).SetPassword(pass)
	}
	if onMsg != nil {
		o.SetDefaultPublishHandler(onMsg)
	}
	cl := paho.NewClient(o)
	tok := cl.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		return nil, fmt.Errorf("connecting to %s: timed out", b.broker)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("connecting to %s as %s: %w", b.broker, clientID, err)
	}
	return cl, nil
}

// publishLoad has each client publish for b.dur with at most b.window
// QoS 1 publishes unacknowledged; QoS 0 publishes count once written.
// payload(i, seq) builds message seq of publisher i.
func (b *mqttBench) publishLoad(ctx context.Context, clients []paho.Client, topic func(i int) string, payload func(i, seq int) []byte) (ok, failed int64, elapsed time.Duration, firstErr error) {
	var okN, failN atomic.Int64
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(b.dur)
	for i, cl := range clients {
		wg.Add(1)
		go func(i int, cl paho.Client) {
			defer wg.Done()
			inflight := make(chan paho.Token, b.window)
			settle := func(tok paho.Token) {
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					failN.Add(1)
					errOnce.Do(func() {
						firstErr = tok.Error()
						if firstErr == nil {
							firstErr = errors.New("publish not acknowledged within 30s")
						}
					})
					return
				}
				okN.Add(1)
			}
			t := topic(i)
			// At -rate, publisher i sends message seq at its due time.
			pace := func(seq int) bool {
				if b.rate <= 0 {
					return true
				}
				per := float64(len(clients)) / b.rate // seconds between this publisher's messages
				due := start.Add(time.Duration((float64(seq) + float64(i)/float64(len(clients))) * per * float64(time.Second)))
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
			for seq := 0; ctx.Err() == nil && time.Now().Before(end) && pace(seq); seq++ {
				if len(inflight) == cap(inflight) {
					settle(<-inflight)
				}
				inflight <- cl.Publish(t, byte(b.qos), false, payload(i, seq))
			}
			close(inflight)
			for tok := range inflight {
				settle(tok)
			}
		}(i, cl)
	}
	wg.Wait()
	return okN.Load(), failN.Load(), time.Since(start), firstErr
}

func (b *mqttBench) harvest(ctx context.Context, c *client.Client, stdout io.Writer) error {
	_, urls, err := setupBenchDevices(ctx, c, b.pubs)
	if err != nil {
		return err
	}
	var clients []paho.Client
	defer func() {
		for _, cl := range clients {
			cl.Disconnect(100)
		}
	}()
	for _, pu := range urls {
		id, secret, err := deviceOfPublishURL(pu)
		if err != nil {
			return err
		}
		cl, err := b.connect(id, id, secret, nil)
		if err != nil {
			return err
		}
		clients = append(clients, cl)
	}
	stored0, err := mqttStored(ctx, c)
	if err != nil {
		return err
	}
	ids := make([]string, len(urls))
	for i, pu := range urls {
		ids[i], _, _ = deviceOfPublishURL(pu)
	}
	fmt.Fprintf(stdout, "publishing %d-byte JSON on devices/<id>/data at QoS %d from %d device(s) for %s …\n", b.size, b.qos, len(clients), b.dur)
	start := time.Now()
	ok, failed, elapsed, firstErr := b.publishLoad(ctx, clients,
		func(i int) string { return "devices/" + ids[i] + "/data" },
		func(i, seq int) []byte { return benchPayload(i, seq, b.size) })
	fmt.Fprintf(stdout, "publishes: %d ok, %d failed in %.1fs\n", ok, failed, elapsed.Seconds())
	fmt.Fprintf(stdout, "publish throughput: %.0f publishes/s\n", float64(ok)/elapsed.Seconds())
	if firstErr != nil {
		fmt.Fprintf(stdout, "first error: %v\n", firstErr)
	}
	// Wait until every acknowledged publish is stored, or nothing moves
	// for 15 s (QoS 0 publishes may be lost under overload: that shows).
	var stored float64
	last, lastChange := -1.0, time.Now()
	for ctx.Err() == nil {
		n, err := mqttStored(ctx, c)
		if err != nil {
			return err
		}
		stored = n - stored0
		if stored >= float64(ok) {
			break
		}
		if stored != last {
			last, lastChange = stored, time.Now()
		} else if time.Since(lastChange) > 15*time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	all := time.Since(start)
	fmt.Fprintf(stdout, "stored in Harvest Data: %.0f of %d in %.1fs from the first publish\n", stored, ok, all.Seconds())
	fmt.Fprintf(stdout, "stored throughput: %.0f entries/s\n", stored/all.Seconds())
	fmt.Fprintf(stdout, "lost: %.0f\n", max(0, float64(ok)-stored))
	return nil
}

// deviceOfPublishURL takes a device's ID and secret out of the publish URL
// setupBenchDevices returns.
func deviceOfPublishURL(s string) (id, secret string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", err
	}
	p := strings.TrimSuffix(strings.TrimPrefix(u.Path, "/v1/devices/"), "/publish")
	if id, err = url.PathUnescape(p); err != nil || id == "" {
		return "", "", fmt.Errorf("unexpected publish URL %s", s)
	}
	return id, u.Query().Get("device_secret"), nil
}

// mqttStored reads nagare_mqtt_data_stored_total from the server's metrics.
func mqttStored(ctx context.Context, c *client.Client) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.Endpoint+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "nagare_mqtt_data_stored_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("the server's /metrics has no nagare_mqtt_data_stored_total: is it a nagare with MQTT?")
}

func (b *mqttBench) pubsub(ctx context.Context, c *client.Client, stdout io.Writer) error {
	user, pass := "", ""
	if c != nil {
		user, pass = c.APIKey, c.Token
	}
	var received atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	sub, err := b.connect("bench-sub-"+run, user, pass, func(_ paho.Client, m paho.Message) {
		received.Add(1)
		if p := m.Payload(); len(p) >= 8 {
			d := time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(p))))
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
		}
	})
	if err != nil {
		return err
	}
	defer sub.Disconnect(100)
	filter := b.topic + "/#"
	tok := sub.Subscribe(filter, byte(b.qos), nil)
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscribing to %s: %v", filter, tok.Error())
	}
	if q := tok.(*paho.SubscribeToken).Result()[filter]; q > 2 {
		return fmt.Errorf("subscription to %s refused", filter)
	}
	var clients []paho.Client
	defer func() {
		for _, cl := range clients {
			cl.Disconnect(100)
		}
	}()
	for i := 0; i < b.pubs; i++ {
		cl, err := b.connect(fmt.Sprintf("bench-pub-%s-%d", run, i), user, pass, nil)
		if err != nil {
			return err
		}
		clients = append(clients, cl)
	}
	rate := ""
	if b.rate > 0 {
		rate = fmt.Sprintf(" at %g/s", b.rate)
	}
	fmt.Fprintf(stdout, "%d publisher(s) → 1 subscriber on %s at QoS %d, %d-byte payloads, for %s%s …\n", b.pubs, b.broker, b.qos, b.size, b.dur, rate)
	start := time.Now()
	ok, failed, elapsed, firstErr := b.publishLoad(ctx, clients,
		func(i int) string { return fmt.Sprintf("%s/%d", b.topic, i) },
		func(i, seq int) []byte {
			p := make([]byte, b.size)
			binary.BigEndian.PutUint64(p, uint64(time.Now().UnixNano()))
			return p
		})
	last, lastChange := int64(-1), time.Now()
	for ctx.Err() == nil && received.Load() < ok && time.Since(lastChange) < 5*time.Second {
		if n := received.Load(); n != last {
			last, lastChange = n, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	all := time.Since(start)
	got := received.Load()
	fmt.Fprintf(stdout, "publishes: %d ok, %d failed in %.1fs\n", ok, failed, elapsed.Seconds())
	fmt.Fprintf(stdout, "publish throughput: %.0f publishes/s\n", float64(ok)/elapsed.Seconds())
	fmt.Fprintf(stdout, "received: %d in %.1fs\n", got, all.Seconds())
	fmt.Fprintf(stdout, "receive throughput: %.0f messages/s\n", float64(got)/all.Seconds())
	fmt.Fprintf(stdout, "lost: %d\n", max(0, ok-got))
	mu.Lock()
	fmt.Fprintf(stdout, "latency: %s\n", percentiles(lat))
	mu.Unlock()
	if firstErr != nil {
		fmt.Fprintf(stdout, "first error: %v\n", firstErr)
	}
	return nil
}
