// Package blob is nagare's object-storage adapter over gocloud.dev/blob:
// local files by default (file://), S3 (s3://) and Azure Blob / ADLS Gen2
// (azblob://) by URL, mem:// in tests. It also signs expiring download URLs;
// for stores that cannot sign their own (local files, memory) nagare serves
// the signed URL itself at SignedPath.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob://
	"gocloud.dev/blob/driver"
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/memblob" // mem://
	_ "gocloud.dev/blob/s3blob"  // s3://
	"gocloud.dev/gcerrors"
)

// SignedPath is where nagare serves URLs it signed itself.
const SignedPath = "/_blob"

// Store is an open bucket plus URL signing.
type Store struct {
	Bucket *blob.Bucket
	URL    string // redacted description for logs
	local  bool   // file:// or mem://: URLs are signed and served by nagare
	dir    string // file://: the bucket's directory
	signer *fileblob.URLSignerHMAC
}

// Open opens the bucket named by rawURL ("" means <dataDir>/files).
// signKey signs nagare-served URLs; publicBase is nagare's externally
// reachable origin (e.g. http://127.0.0.1:8080) used in those URLs.
func Open(ctx context.Context, rawURL, dataDir string, signKey []byte, publicBase string) (*Store, error) {
	base, err := url.Parse(strings.TrimSuffix(publicBase, "/") + SignedPath)
	if err != nil {
		return nil, fmt.Errorf("public URL %q: %w", publicBase, err)
	}
	s := &Store{signer: fileblob.NewURLSignerHMAC(base, signKey)}
	if rawURL == "" || strings.HasPrefix(rawURL, "file://") {
		dir, err := FileDir(rawURL, dataDir)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		b, err := fileblob.OpenBucket(dir, &fileblob.Options{URLSigner: s.signer, CreateDir: true, NoTempDir: true, DirFileMode: 0o700})
		if err != nil {
			return nil, fmt.Errorf("files %s: %w", dir, err)
		}
		s.Bucket, s.URL, s.local, s.dir = b, "file://"+dir, true, dir
		return s, nil
	}
	b, err := blob.OpenBucket(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("files %s: %w", redactURL(rawURL), err)
	}
	// An Azure container is created when it does not exist yet (S3
	// buckets are the account owner's to create).
	var cc *container.Client
	if b.As(&cc) {
		if _, err := cc.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
			_ = b.Close()
			return nil, fmt.Errorf("files %s: creating the container: %s", redactURL(rawURL), bloberrorCode(err))
		}
	}
	s.Bucket, s.URL = b, redactURL(rawURL)
	s.local = strings.HasPrefix(rawURL, "mem://")
	return s, nil
}

// bloberrorCode names an Azure error without its message (which can quote
// request URLs and headers).
func bloberrorCode(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return fmt.Sprintf("HTTP %d %s", re.StatusCode, re.ErrorCode)
	}
	return "the request failed"
}

// FileDir resolves a file:// URL (or "") to a directory.
func FileDir(rawURL, dataDir string) (string, error) {
	if rawURL == "" {
		return filepath.Join(dataDir, "files"), nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("files URL %q: %w", rawURL, err)
	}
	p := u.Host + u.Path // file://./rel → "./rel"; file:///abs → "/abs"
	if p == "" {
		return "", fmt.Errorf("files URL %q names no directory", rawURL)
	}
	return filepath.Clean(p), nil
}

// SupportedScheme reports whether a files URL uses a scheme nagare opens.
func SupportedScheme(rawURL string) bool {
	if rawURL == "" {
		return true
	}
	for _, p := range []string{"file://", "s3://", "azblob://", "mem://"} {
		if strings.HasPrefix(rawURL, p) {
			return true
		}
	}
	return false
}

// Close closes the bucket.
func (s *Store) Close() error { return s.Bucket.Close() }

// IsNotFound reports whether err means the object does not exist.
// A key below an existing file's key (a/b.jpg/c) is not found either;
// the local store reports it as ENOTDIR.
func IsNotFound(err error) bool {
	return err != nil && (gcerrors.Code(err) == gcerrors.NotFound || errors.Is(err, syscall.ENOTDIR))
}

// SignedURL returns a GET URL for key that expires after expiry.
func (s *Store) SignedURL(ctx context.Context, key string, expiry time.Duration) (string, error) {
	opts := &blob.SignedURLOptions{Expiry: expiry, Method: http.MethodGet}
	if !s.local {
		u, err := s.Bucket.SignedURL(ctx, key, opts)
		if err == nil {
			return u, nil
		}
		if gcerrors.Code(err) != gcerrors.Unimplemented {
			return "", err
		}
	}
	u, err := s.signer.URLFromKey(ctx, key, &driver.SignedURLOptions{Expiry: expiry, Method: http.MethodGet})
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// ServeSigned serves GET/HEAD of a URL produced by SignedURL for stores
// that do not sign their own. It checks expiry, signature and method.
func (s *Store) ServeSigned(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// fileblob's KeyFromURL checks expiry and MAC but not the signed method.
	if r.URL.Query().Get("method") != http.MethodGet {
		http.Error(w, "signed URL is not for GET", http.StatusForbidden)
		return
	}
	key, err := s.signer.KeyFromURL(r.Context(), r.URL)
	if err != nil {
		http.Error(w, "invalid or expired signed URL", http.StatusForbidden)
		return
	}
	rd, err := s.Bucket.NewReader(r.Context(), key, nil)
	if err != nil {
		if IsNotFound(err) {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		http.Error(w, "read error", http.StatusInternalServerError)
		return
	}
	defer rd.Close()
	w.Header().Set("Content-Type", rd.ContentType())
	w.Header().Set("Content-Length", strconv.FormatInt(rd.Size(), 10))
	w.Header().Set("Cache-Control", "private, max-age=60")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Stored files are uploaded by devices and users; served from nagare's
	// origin, an HTML or SVG file must not run script there.
	w.Header().Set("Content-Security-Policy", "sandbox")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.Copy(w, rd)
}

// ListOptions lists keys under prefix, collapsing "directories" at
// delimiter when it is not empty. When startAfter is set, stores that can
// (S3) begin the listing after that key; others list from the start, so
// callers must still skip keys up to and including startAfter.
func (s *Store) ListOptions(prefix, delimiter, startAfter string) *blob.ListOptions {
	opts := &blob.ListOptions{Prefix: prefix, Delimiter: delimiter}
	// The S3 driver hex-escapes "__0x" sequences in keys; a raw start key
	// containing one would not compare like the stored key.
	if startAfter == "" || strings.Contains(startAfter, "__0x") {
		return opts
	}
	opts.BeforeList = func(as func(any) bool) error {
		var in *s3.ListObjectsV2Input
		if as(&in) && in.ContinuationToken == nil {
			in.StartAfter = &startAfter
		}
		return nil
	}
	return opts
}

// Ordered reports whether List returns keys in ascending byte order.
// Object stores do; a file:// store walks directories, so "a/b" can come
// before "a-c", and callers must not stop listing early on key order.
func (s *Store) Ordered() bool { return s.dir == "" }

// PruneDirs removes empty directories left behind in a file:// store at
// key's own path and above it, up to the bucket root, so that a later
// write of a file where an empty directory was (or below a removed one)
// does not fail. Object stores have no directories: it does nothing there.
func (s *Store) PruneDirs(key string) {
	if s.dir == "" || strings.Contains(key, "__0x") || strings.ContainsRune(key, '\\') {
		return
	}
	p := filepath.Join(s.dir, filepath.FromSlash(key))
	if rel, err := filepath.Rel(s.dir, p); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return
	}
	if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
		p = filepath.Dir(p)
	}
	for p != s.dir && strings.HasPrefix(p, s.dir+string(filepath.Separator)) {
		// os.Remove deletes only empty directories; stop at the first
		// one that still holds something.
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() || os.Remove(p) != nil {
			return
		}
		p = filepath.Dir(p)
	}
}

// redactURL drops query parameters, which may carry keys, from a store URL.
func redactURL(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i]
	}
	return raw
}
