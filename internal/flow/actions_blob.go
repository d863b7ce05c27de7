package flow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
)

// The blob action writes an object to an external store given by URL —
// S3 (or an S3-compatible store), Azure Blob Storage / ADLS Gen2 through
// its Blob endpoint, or a local directory — with credentials from the
// credentials store. It is seed 001's upload to a data lake. The bucket is
// opened for each call with the flow's HTTP client (so its timeouts and
// any destination rules apply) and the SDKs' own retries off: the engine
// retries failed attempts (5xx, 408, 429, network errors, timeouts);
// refusals (other 4xx: a wrong key, a missing bucket) and missing
// configuration fail at once. Secrets never reach an error or the run
// history: messages are built from status codes and error codes, and
// every secret value is masked in what remains.

// maxBlobMetadata bounds an object's metadata (keys and values): S3's
// limit for user metadata, the tightest of the stores.
const maxBlobMetadata = 2048

func init() {
	RegisterAction(Spec{Kind: "blob", Run: runBlob, Idempotent: true,
		Summary: "Writes an object to an external store: S3 or an S3-compatible store (`s3://bucket?region=…&endpoint=…`), Azure Blob Storage / ADLS Gen2 through its Blob endpoint (`azblob://container`), or a local directory allowed by the server (`file:///dir`) — see blob.md. The content is downloaded from `from` (e.g. a camera export's signed URL), given as `content`, or read from Harvest Files (`filesPath`). Store 5xx, 408, 429, network errors and timeouts are retried; refusals (a wrong key, a missing bucket) and missing configuration fail at once, naming what is missing. Output: `{url, key, size, contentType, etag}` (`url` without its query).",
		Fields: []Field{
			{Name: "url", Type: TTemplate, Required: true, Escape: "url", Doc: "the store: `s3://bucket?region=ap-northeast-1` (`&endpoint=http://host:port` for S3-compatible stores), `azblob://container` (`?domain=127.0.0.1:10000&protocol=http` for Azurite), `file:///srv/archive`"},
			{Name: "key", Type: TTemplate, Required: true, Doc: "object key, e.g. ${formatTime(payload.time, \"%Y/%m/%d/cam_%H%M%S.jpg\")}; no leading /, no empty, . or .. segments"},
			{Name: "from", Type: TTemplate, Doc: "download the content from this http(s) URL"},
			{Name: "content", Type: TAny, Doc: "the content itself: a string as it is, anything else as JSON"},
			{Name: "filesPath", Type: TTemplate, Doc: "copy this Harvest Files file, e.g. /cams/${payload.deviceId}/latest.jpg"},
			{Name: "contentType", Type: TTemplate, Doc: "content type (default: the download's or the file's; for content text/plain or application/json)"},
			{Name: "metadata", Type: TMap, Doc: "metadata stored with the object; keys of lower-case letters, digits and _ (S3 lower-cases keys, Azure takes identifiers); 2 KiB in all"},
			{Name: "sizeMetadata", Type: TString, Doc: "also store the content's size in bytes under this metadata key (e.g. file_size)"},
			{Name: "credentials", Type: TCredential, Doc: "aws-credentials (s3://) or azure-storage (azblob://); required for both, not used for file://"},
			{Name: "maxBytes", Type: TInt, Min: 1, Max: 1 << 30, Default: 32 << 20, Doc: "largest content accepted"},
		},
		OneOf: [][]string{{"from", "content", "filesPath"}},
		Check: checkBlob,
	})
	RegisterAction(Spec{Kind: "fail", Run: runFail, Idempotent: true,
		Summary: "Fails the step with a message, at once (no retries): ends a loop that gave up, or rejects input clearly. The run fails with the message, unless the action has an `onError` output.",
		Fields: []Field{
			{Name: "message", Type: TTemplate, Required: true, Doc: "the error, e.g. export ${payload.exportId} not completed after ${payload.tries} tries"},
		},
	})
}

// runFail is the fail action.
func runFail(_ context.Context, c *Call) (any, error) {
	msg := strings.TrimSpace(cfgString(c.Config, "message"))
	if msg == "" {
		msg = "failed (the fail action's message rendered empty)"
	}
	return nil, Permanent(errors.New(msg))
}

// blobTarget is a parsed store URL.
type blobTarget struct {
	scheme  string // s3, azblob, file
	bucket  string // bucket, container, or directory for file
	display string // the URL without its query
	// s3
	region, endpoint string
	pathStyle        bool
	// azblob
	domain, protocol string
	localEmu         bool
}

var (
	s3BucketRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	azContainerRE  = regexp.MustCompile(`^(\$root|[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62})$`)
	blobMetaKeyRE  = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,63}$`)
	s3URLParams    = []string{"region", "endpoint", "use_path_style", "disable_https"}
	azureURLParams = []string{"domain", "protocol", "localemu"}
)

// parseBlobURL parses a store URL; problems name what is wrong, each as a
// message starting with "url".
func parseBlobURL(raw string) (*blobTarget, []string) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, []string{"url is empty"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, []string{"url is not a valid URL (s3://bucket?region=…, azblob://container, file:///dir)"}
	}
	t := &blobTarget{scheme: u.Scheme, bucket: u.Host, display: u.Scheme + "://" + u.Host + u.Path}
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	q := u.Query()
	known := func(names []string) {
		var unknown []string
		for k := range q {
			if !contains(names, k) {
				unknown = append(unknown, k)
			}
		}
		sort.Strings(unknown)
		for _, k := range unknown {
			bad("url: unknown parameter %q for %s:// (known: %s)", k, t.scheme, strings.Join(names, ", "))
		}
	}
	boolParam := func(name string, def bool) bool {
		v := q.Get(name)
		if v == "" {
			return def
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("url: %s must be true or false", name)
		}
		return b
	}
	if u.User != nil {
		bad("url: no user or password in the URL; put keys in the credentials store (credentials)")
	}
	switch u.Scheme {
	case "s3":
		known(s3URLParams)
		if !s3BucketRE.MatchString(t.bucket) {
			bad("url: bucket %q: 3–63 lower-case letters, digits, dots and hyphens", t.bucket)
		}
		if u.Path != "" && u.Path != "/" {
			bad("url: s3://%s%s: a path does not go in the URL; put it in key", t.bucket, u.Path)
		}
		t.display = "s3://" + t.bucket
		t.region = q.Get("region")
		if t.region == "" {
			bad("url: s3:// needs ?region=… (e.g. ap-northeast-1; any region for most S3-compatible stores)")
		}
		if ep := q.Get("endpoint"); ep != "" {
			scheme := "https://"
			if boolParam("disable_https", false) {
				scheme = "http://"
			}
			if !strings.Contains(ep, "://") {
				ep = scheme + ep
			}
			eu, err := url.Parse(ep)
			if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" || eu.User != nil {
				bad("url: endpoint must be an http(s) URL such as http://127.0.0.1:9000")
			}
			t.endpoint = ep
		}
		// S3-compatible stores mostly want path-style requests.
		t.pathStyle = boolParam("use_path_style", t.endpoint != "")
	case "azblob":
		if q.Has("storage_account") {
			bad("url: storage_account: the account comes from the credential (azure-storage accountName)")
			q.Del("storage_account")
		}
		known(azureURLParams)
		if !azContainerRE.MatchString(t.bucket) {
			bad("url: container %q: 3–63 lower-case letters, digits and single hyphens", t.bucket)
		}
		if u.Path != "" && u.Path != "/" {
			bad("url: azblob://%s%s: a path does not go in the URL; put it in key", t.bucket, u.Path)
		}
		t.display = "azblob://" + t.bucket
		t.domain, t.protocol = q.Get("domain"), q.Get("protocol")
		if t.protocol != "" && t.protocol != "http" && t.protocol != "https" {
			bad("url: protocol must be http or https")
		}
		if strings.ContainsAny(t.domain, "/?#@") {
			bad("url: domain is a host name (and port), such as blob.core.windows.net or 127.0.0.1:10000")
		}
		t.localEmu = boolParam("localemu", false)
	case "file":
		if len(q) > 0 {
			bad("url: file:// takes no parameters")
		}
		if u.Host != "" && u.Host != "localhost" || !strings.HasPrefix(u.Path, "/") {
			bad("url: file:// needs an absolute directory, such as file:///srv/archive")
		}
		t.bucket = filepath.Clean(u.Path)
		t.display = "file://" + t.bucket
	default:
		bad("url: %q is not a store URL: use s3://bucket?region=…, azblob://container or file:///dir", redactURL(raw))
	}
	return t, out
}

// redactURL drops a URL's query and user information.
func redactURL(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if i := strings.Index(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			raw = raw[:j+3] + raw[i+1:]
		}
	}
	return raw
}

// checkBlobKey says what is wrong with an object key ("" if nothing).
func checkBlobKey(key string) string {
	switch {
	case key == "":
		return "key is empty"
	case len(key) > 1024:
		return fmt.Sprintf("key is %d bytes; at most 1024", len(key))
	case !utf8.ValidString(key):
		return "key is not valid UTF-8"
	case strings.HasPrefix(key, "/"):
		return fmt.Sprintf("key %q must not start with /", key)
	case strings.ContainsRune(key, '\\'):
		return fmt.Sprintf("key %q: use / between folders, not \\", key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return "key holds a control character"
		}
	}
	for _, seg := range strings.Split(strings.TrimSuffix(key, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Sprintf("key %q has an empty, . or .. segment", key)
		}
	}
	if strings.HasSuffix(key, "/") {
		return fmt.Sprintf("key %q ends with / (names a folder, not an object)", key)
	}
	return ""
}

// checkBlob validates what can be checked before any event: literal URLs
// and keys, metadata keys, and that s3:// and azblob:// have credentials.
func checkBlob(cfg map[string]any) []string {
	var out []string
	literal := func(k string) (string, bool) {
		s, ok := cfg[k].(string)
		return s, ok && !strings.Contains(s, "${")
	}
	if raw, ok := literal("url"); ok {
		t, problems := parseBlobURL(raw)
		out = append(out, problems...)
		if t != nil && len(problems) == 0 && cfgString(cfg, "credentials") == "" {
			switch t.scheme {
			case "s3":
				out = append(out, "credentials: s3:// needs an aws-credentials credential (accessKeyId, secretAccessKey)")
			case "azblob":
				out = append(out, "credentials: azblob:// needs an azure-storage credential (accountName with accountKey or sasToken, or connectionString)")
			}
		}
	}
	if key, ok := literal("key"); ok {
		if msg := checkBlobKey(key); msg != "" {
			out = append(out, msg)
		}
	}
	if from, ok := literal("from"); ok {
		if _, err := actionURL("from", from); err != nil {
			out = append(out, err.Error())
		}
	}
	meta := cfgStrings(cfg, "metadata")
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !blobMetaKeyRE.MatchString(k) {
			out = append(out, fmt.Sprintf("metadata: key %q: use lower-case letters, digits and _ (not starting with a digit), at most 64", k))
		}
	}
	if sm := cfgString(cfg, "sizeMetadata"); sm != "" {
		if !blobMetaKeyRE.MatchString(sm) {
			out = append(out, fmt.Sprintf("sizeMetadata: key %q: use lower-case letters, digits and _ (not starting with a digit), at most 64", sm))
		}
		if _, dup := meta[sm]; dup {
			out = append(out, fmt.Sprintf("sizeMetadata: %q is also set in metadata", sm))
		}
	}
	return out
}

// blobSource is the content to upload.
type blobSource struct {
	r           io.Reader
	size        int64 // -1: unknown until read
	contentType string
	counted     *cappedReader // counts what was read, fails past maxBytes
	close       func()
}

func runBlob(ctx context.Context, c *Call) (out any, err error) {
	cfg := c.Config
	rawURL, key, credID := cfgString(cfg, "url"), cfgString(cfg, "key"), cfgString(cfg, "credentials")

	// Missing configuration: every missing piece in one message.
	var missing []string
	if strings.TrimSpace(rawURL) == "" {
		missing = append(missing, "url (rendered empty)")
	}
	if key == "" {
		missing = append(missing, "key (rendered empty)")
	}
	var t *blobTarget
	if len(missing) == 0 {
		var problems []string
		t, problems = parseBlobURL(rawURL)
		if len(problems) > 0 {
			return nil, Permanent(fmt.Errorf("blob: %s", strings.Join(problems, "; ")))
		}
		if credID == "" {
			switch t.scheme {
			case "s3":
				missing = append(missing, "credentials (s3:// needs an aws-credentials credential: accessKeyId, secretAccessKey)")
			case "azblob":
				missing = append(missing, "credentials (azblob:// needs an azure-storage credential: accountName with accountKey or sasToken, or connectionString)")
			}
		}
	}
	if len(missing) > 0 {
		return nil, Permanent(fmt.Errorf("blob: missing configuration: %s", strings.Join(missing, ", ")))
	}
	if msg := checkBlobKey(key); msg != "" {
		return nil, Permanent(fmt.Errorf("blob: %s", msg))
	}
	meta := map[string]string{}
	size := 0
	for k, v := range cfgStrings(cfg, "metadata") {
		meta[k] = v
		size += len(k) + len(v)
	}
	if size > maxBlobMetadata {
		return nil, Permanent(fmt.Errorf("blob: metadata is %d bytes; at most %d (S3's limit)", size, maxBlobMetadata))
	}
	sizeKey := cfgString(cfg, "sizeMetadata")

	var red redactor
	bucket, err := openBlobBucket(ctx, c, t, credID, &red)
	if err != nil {
		return nil, err
	}
	defer bucket.Close()

	src, err := blobContent(ctx, c, sizeKey != "")
	if err != nil {
		return nil, err
	}
	defer src.close()
	if sizeKey != "" {
		meta[sizeKey] = strconv.FormatInt(src.size, 10)
	}
	ct := cfgString(cfg, "contentType")
	if ct == "" {
		ct = src.contentType
	}
	if ct == "" {
		ct = mime.TypeByExtension(path.Ext(key))
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		ct = "application/octet-stream"
	}
	where := "blob upload to " + t.display + "/" + key
	defer func() {
		// A driver that panics on a failed upload (azureblob's writer
		// did) must not take the worker down.
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%s: %v", where, r)
		}
	}()
	opts := &blob.WriterOptions{ContentType: ct, Metadata: meta}
	// A content read that fails (too large, the download broke off)
	// cancels the upload: gocloud closes the writer after a failed Upload,
	// which would otherwise commit what was read so far (fileblob does).
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	body := &cancelOnError{r: src.r, cancel: cancel}
	if err := bucket.Upload(uctx, key, body, opts); err != nil {
		switch {
		case errors.Is(src.counted.err, errDownloadTooLarge):
			return nil, Permanent(fmt.Errorf("blob: the content exceeds maxBytes (%d bytes); nothing was stored", src.counted.max))
		case src.counted.err != nil:
			// The download broke off: nothing was stored, try again.
			return nil, requestError("blob: download", src.counted.err, red)
		}
		return nil, blobError(where, err, red, t)
	}
	res := map[string]any{"url": t.display, "key": key, "size": src.counted.n, "contentType": ct}
	// The ETag, where the credential may read it back (a write-only SAS
	// may not: then there is none).
	if a, err := bucket.Attributes(ctx, key); err == nil && a.ETag != "" {
		res["etag"] = a.ETag
	}
	return res, nil
}

// blobContent opens the content: a download, the content field or a
// Harvest File. needSize: the size must be known before the upload (it
// goes into the metadata), so a download of unknown length is read into
// memory first (at most maxBytes).
func blobContent(ctx context.Context, c *Call, needSize bool) (*blobSource, error) {
	cfg := c.Config
	limit := int64(cfgInt(cfg, "maxBytes", 32<<20))
	tooLarge := func(n int64) error {
		return Permanent(fmt.Errorf("blob: the content of %d bytes exceeds maxBytes (%d bytes); nothing was stored", n, limit))
	}
	src := &blobSource{size: -1, close: func() {}}
	switch {
	case cfg["from"] != nil:
		u, err := actionURL("from", cfgString(cfg, "from"))
		if err != nil {
			return nil, fmt.Errorf("blob: %w", err)
		}
		var red redactor
		if pw, ok := u.User.Password(); ok {
			red.add(pw)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, Permanent(fmt.Errorf("blob: download request: %v", err))
		}
		req.Header.Set("User-Agent", "nagare-flow")
		resp, err := actionClient(c).Do(req)
		if err != nil {
			return nil, requestError("blob: download", err, red)
		}
		if err := statusError("blob: download", resp, red); err != nil {
			resp.Body.Close()
			return nil, err
		}
		if resp.ContentLength > limit {
			resp.Body.Close()
			return nil, tooLarge(resp.ContentLength)
		}
		src.close = func() { resp.Body.Close() }
		src.r, src.size = resp.Body, resp.ContentLength
		src.contentType = resp.Header.Get("Content-Type")
		if needSize && src.size < 0 {
			b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
			if err != nil {
				resp.Body.Close()
				return nil, requestError("blob: download", err, red)
			}
			if int64(len(b)) > limit {
				resp.Body.Close()
				return nil, Permanent(fmt.Errorf("blob: the download exceeds maxBytes (%d bytes); nothing was stored", limit))
			}
			src.r, src.size = bytes.NewReader(b), int64(len(b))
		}
	case cfg["filesPath"] != nil:
		if c.Deps == nil || c.Deps.Files == nil {
			return nil, Permanent(errors.New("blob: Harvest Files is not configured"))
		}
		p := cfgString(cfg, "filesPath")
		if p == "" {
			return nil, Permanent(errors.New("blob: missing configuration: filesPath (rendered empty)"))
		}
		e, rd, err := c.Deps.Files.Open(ctx, c.OperatorID, p)
		if err != nil {
			return nil, apiError("blob: files "+p, err)
		}
		if e.ContentLength > limit {
			rd.Close()
			return nil, tooLarge(e.ContentLength)
		}
		src.r, src.size, src.contentType, src.close = rd, e.ContentLength, e.ContentType, func() { rd.Close() }
	default:
		content, has := cfg["content"]
		if !has {
			return nil, Permanent(errors.New("blob: missing configuration: one of from, content or filesPath"))
		}
		var b []byte
		if s, ok := content.(string); ok {
			b, src.contentType = []byte(s), "text/plain; charset=utf-8"
		} else {
			var err error
			if b, err = marshalJSON(content); err != nil {
				return nil, Permanent(fmt.Errorf("blob: content: %v", err))
			}
			src.contentType = "application/json"
		}
		if int64(len(b)) > limit {
			return nil, tooLarge(int64(len(b)))
		}
		src.r, src.size = bytes.NewReader(b), int64(len(b))
	}
	src.counted = &cappedReader{r: src.r, max: limit}
	src.r = src.counted
	return src, nil
}

// cancelOnError cancels the upload when reading the content fails.
type cancelOnError struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancelOnError) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.cancel()
	}
	return n, err
}

// blobHTTP is the client the store SDKs use: the flow's.
func blobHTTP(c *Call) *http.Client {
	if c.Deps != nil && c.Deps.HTTP != nil {
		return c.Deps.HTTP
	}
	return defaultActionHTTP()
}

// openBlobBucket opens the store with the credential; red collects the
// secret values to mask in errors.
func openBlobBucket(ctx context.Context, c *Call, t *blobTarget, credID string, red *redactor) (*blob.Bucket, error) {
	switch t.scheme {
	case "s3":
		vals, err := credentialValues(ctx, c.Deps, c.OperatorID, credID, "aws-credentials")
		if err != nil {
			return nil, fmt.Errorf("blob: %w", err)
		}
		red.add(vals["secretAccessKey"])
		o := s3.Options{
			Region:       t.region,
			Credentials:  aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(vals["accessKeyId"], vals["secretAccessKey"], "")),
			HTTPClient:   blobHTTP(c),
			UsePathStyle: t.pathStyle,
			Retryer:      aws.NopRetryer{},
		}
		var so s3blob.Options
		if t.endpoint != "" {
			o.BaseEndpoint = aws.String(t.endpoint)
			// Third-party stores expect no flexible checksums.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
			so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		}
		b, err := s3blob.OpenBucket(ctx, s3.New(o), t.bucket, &so)
		if err != nil {
			return nil, Permanent(fmt.Errorf("blob: %s: %s", t.display, red.apply(err.Error())))
		}
		return b, nil
	case "azblob":
		vals, err := credentialValues(ctx, c.Deps, c.OperatorID, credID, "azure-storage")
		if err != nil {
			return nil, fmt.Errorf("blob: %w", err)
		}
		for _, k := range []string{"accountKey", "sasToken", "connectionString"} {
			red.add(vals[k])
		}
		for _, p := range strings.Split(vals["connectionString"], ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && (strings.EqualFold(k, "AccountKey") || strings.EqualFold(k, "SharedAccessSignature")) {
				red.add(v)
			}
		}
		cc, err := azureContainer(t, vals, blobHTTP(c))
		if err != nil {
			return nil, Permanent(fmt.Errorf("blob: %s: %s", t.display, red.apply(err.Error())))
		}
		b, err := azureblob.OpenBucket(ctx, cc, nil)
		if err != nil {
			return nil, Permanent(fmt.Errorf("blob: %s: %s", t.display, red.apply(err.Error())))
		}
		return b, nil
	case "file":
		if err := blobFileAllowed(c.Deps.BlobFileRoots, t.bucket); err != nil {
			return nil, Permanent(fmt.Errorf("blob: %w", err))
		}
		b, err := fileblob.OpenBucket(t.bucket, &fileblob.Options{CreateDir: true, NoTempDir: true, DirFileMode: 0o750})
		if err != nil {
			return nil, Permanent(fmt.Errorf("blob: %s: %v", t.display, err))
		}
		return b, nil
	}
	return nil, Permanent(fmt.Errorf("blob: unsupported store %s", t.display))
}

// azureContainer makes the container client for an azure-storage
// credential: a connection string (its endpoint wins), an account key, or
// a SAS token.
func azureContainer(t *blobTarget, vals map[string]string, hc *http.Client) (*container.Client, error) {
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: hc,
		Retry:     policy.RetryOptions{MaxRetries: -1}, // the engine retries
		Telemetry: policy.TelemetryOptions{ApplicationID: "nagare-flow"},
	}}
	if cs := vals["connectionString"]; cs != "" {
		if t.domain != "" || t.protocol != "" || t.localEmu {
			return nil, errors.New("url: domain, protocol and localemu do not go with a connectionString credential (its BlobEndpoint says where)")
		}
		cc, err := container.NewClientFromConnectionString(cs, t.bucket, opts)
		if err != nil {
			return nil, errors.New("the connectionString of the credential is not valid")
		}
		return cc, nil
	}
	svc, err := azureblob.NewServiceURL(&azureblob.ServiceURLOptions{
		AccountName: vals["accountName"], SASToken: strings.TrimPrefix(vals["sasToken"], "?"),
		StorageDomain: t.domain, Protocol: t.protocol, IsLocalEmulator: t.localEmu,
	})
	if err != nil {
		return nil, err
	}
	containerURL, err := url.JoinPath(string(svc), t.bucket)
	if err != nil {
		return nil, err
	}
	if vals["accountKey"] == "" {
		return container.NewClientWithNoCredential(containerURL, opts)
	}
	cred, err := azblob.NewSharedKeyCredential(vals["accountName"], vals["accountKey"])
	if err != nil {
		return nil, errors.New("the accountKey of the credential is not valid base64")
	}
	return container.NewClientWithSharedKeyCredential(containerURL, cred, opts)
}

// blobFileAllowed checks that dir is one of the server's allowed roots
// or below one.
func blobFileAllowed(allowed []string, dir string) error {
	var roots []string
	for _, r := range allowed {
		if r = strings.TrimSpace(r); r != "" && filepath.IsAbs(r) {
			roots = append(roots, filepath.Clean(r))
		}
	}
	if len(roots) == 0 {
		return errors.New("file:// is not allowed on this server: set blob-file-roots (NAGARE_BLOB_FILE_ROOTS) to the directories flows may write below (see docs/blob.md)")
	}
	for _, r := range roots {
		if rel, err := filepath.Rel(r, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return nil
		}
	}
	return fmt.Errorf("file://%s is not below a directory allowed by blob-file-roots (%s)", dir, strings.Join(roots, ", "))
}

// blobError describes a failed store call from its status and error code
// (never the SDK's message, which can quote request URLs and headers), and
// classifies it: 5xx, 408, 429 and network errors are retried; other
// answers and configuration errors fail at once.
func blobError(what string, err error, red redactor, t *blobTarget) error {
	var (
		status    int
		code, msg string
	)
	var azErr *azcore.ResponseError
	var awsErr *awshttp.ResponseError
	if errors.As(err, &azErr) {
		status, code = azErr.StatusCode, azErr.ErrorCode
	} else if errors.As(err, &awsErr) {
		status = awsErr.HTTPStatusCode()
		var ae smithy.APIError
		if errors.As(err, &ae) {
			code, msg = ae.ErrorCode(), ae.ErrorMessage()
		}
	}
	if status != 0 {
		text := fmt.Sprintf("%s: %d %s", what, status, http.StatusText(status))
		if code != "" {
			text += " (" + code + ")"
		}
		if msg != "" {
			text += ": " + msg
		}
		switch {
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			text += " — check the credential: a wrong key or secret, or one not allowed to write here"
		case status == http.StatusNotFound:
			what := "bucket"
			if t.scheme == "azblob" {
				what = "container"
			}
			text += fmt.Sprintf(" — does the %s %q exist? create it first", what, t.bucket)
		}
		e := &actionError{msg: red.apply(text), err: err}
		if retryableStatus(status) {
			return e
		}
		return Permanent(e)
	}
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err // without the URL, which may carry a SAS token
	}
	text := inner.Error()
	if i := strings.Index(text, "): "); strings.HasPrefix(text, "blob (") && i > 0 {
		text = text[i+3:] // gocloud's "blob (key …) (code=…): " prefix
	}
	e := &actionError{msg: red.apply(what + ": " + text), err: err}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return e
	}
	switch gcerrors.Code(err) {
	case gcerrors.InvalidArgument, gcerrors.PermissionDenied, gcerrors.NotFound, gcerrors.FailedPrecondition, gcerrors.Unimplemented:
		return Permanent(e)
	}
	return e
}
