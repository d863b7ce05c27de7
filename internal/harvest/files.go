package harvest

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	gblob "gocloud.dev/blob"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/blob"
)

// FilesOptions configure Harvest Files.
type FilesOptions struct {
	MaxFileBytes int64
	SignedURLTTL time.Duration
}

// Files implements Harvest Files on a blob store.
//
// Every operator's files live under the key prefix "<operatorID>/"; a file
// path "/a/b.jpg" is the key "<operatorID>/a/b.jpg". Directories are
// implicit: a directory exists while some file lies below it.
type Files struct {
	store    *blob.Store
	opts     FilesOptions
	onChange atomic.Pointer[func(context.Context, FileEvent)]
}

// FileEvent is a change to a Harvest File.
type FileEvent struct {
	OperatorID  string
	Path        string // as users see it, with a leading "/"
	Kind        string // FileCreated, FileUpdated or FileDeleted
	ContentType string
	Size        int64
	Time        time.Time
}

// FileEvent kinds.
const (
	FileCreated = "created"
	FileUpdated = "updated"
	FileDeleted = "deleted"
)

// SetOnChange sets the function called after every successful Put and
// Delete (from the API or from Go callers), synchronously: it must be
// quick. nil removes it. It may be set at any time, also while serving.
func (f *Files) SetOnChange(fn func(ctx context.Context, ev FileEvent)) {
	if fn == nil {
		f.onChange.Store(nil)
		return
	}
	f.onChange.Store(&fn)
}

func (f *Files) changed(ctx context.Context, ev FileEvent) {
	if fn := f.onChange.Load(); fn != nil {
		(*fn)(ctx, ev)
	}
}

// NewFiles creates the Harvest Files service.
func NewFiles(st *blob.Store, opts FilesOptions) *Files { return &Files{store: st, opts: opts} }

// FileEntry describes a file or directory (SORACOM's FileEntry). Times are
// UNIX milliseconds; directories carry only the path fields. Metadata (not
// in SORACOM's FileEntry) is the user metadata stored with the file, when
// it has some.
type FileEntry struct {
	FilePath         string `json:"filePath"`
	Filename         string `json:"filename"`
	Directory        string `json:"directory"`
	IsDirectory      bool   `json:"isDirectory"`
	ContentType      string `json:"contentType"`
	ContentLength    int64  `json:"contentLength"`
	ETag             string `json:"etag"`
	CreatedTime      int64  `json:"createdTime"`
	LastModifiedTime int64  `json:"lastModifiedTime"`

	Metadata map[string]string `json:"metadata,omitempty"`
}

// Path limits (SORACOM Harvest Files).
const (
	MaxPathBytes  = 1024
	MaxPathLevels = 16 // directories above a file

	defaultListLimit = 10
	maxListLimit     = 1000

	// MaxSegmentBytes bounds one path segment: file systems allow 255
	// bytes per name, and the file:// store adds a temporary suffix of up
	// to 22 bytes and a 6-byte ".attrs" side-car to names.
	MaxSegmentBytes = 200
	// MaxKeyBytes is the longest object key S3 and Azure accept. Keys
	// carry the operator ID, so the longest path is somewhat shorter than
	// MaxPathBytes.
	MaxKeyBytes = 1024

	// Blob metadata: the first upload time (ms), so createdTime survives
	// overwrites, and the upload time (ms), since stores keep modification
	// times at different resolutions (S3: seconds). Underscores keep the
	// keys valid in every store (Azure allows only identifier characters).
	metaCreated  = "created_ms"
	metaModified = "modified_ms"
	// metaUser prefixes user metadata keys, so they never meet the
	// internal ones.
	metaUser = "u_"

	// attrsSuffix is fileblob's metadata side-car suffix; keys ending in
	// it cannot be stored.
	attrsSuffix = ".attrs"
)

const filesPattern = "/v1/files/{scope}/{path...}"

// isDir: a trailing slash (or the root) names a directory.
func isDir(r *http.Request) bool {
	p := r.PathValue("path")
	return p == "" || strings.HasSuffix(p, "/")
}

func isMetadata(r *http.Request) bool {
	return r.Method == http.MethodHead || r.URL.Query().Has("metadata")
}

// Register mounts the /v1/files operations. Several share a path and are
// told apart by a trailing slash or ?metadata (api.Op.Match), so each is
// authorized under its own name.
func (f *Files) Register(rt *api.Router) {
	rt.Handle(api.Op{Name: "FileEntry:putFile", Method: "PUT", Path: filesPattern,
		Summary: "Upload a file (raw body, Content-Type kept): 201 created, 200 overwritten; scope must be private",
		Handler: f.handlePut})
	rt.Handle(api.Op{Name: "FileEntry:getFile", Method: "GET", Path: filesPattern,
		Summary: "302 to an expiring signed download URL; a directory redirects to its listing",
		Handler: f.handleGet})
	rt.Handle(api.Op{Name: "FileEntry:getFileMetadata", Method: "GET", Path: filesPattern,
		Summary: "GET …?metadata (or HEAD): the FileEntry of a file or directory",
		Match:   func(r *http.Request) bool { return !isDir(r) && isMetadata(r) },
		Handler: f.handleMetadata})
	rt.Handle(api.Op{Name: "FileEntry:listFiles", Method: "GET", Path: filesPattern,
		Summary: "With a trailing slash (/v1/files/private/ is the root): the directory's files and sub-directories; limit, last_evaluated_key",
		Match:   isDir,
		Handler: f.handleList})
	rt.Handle(api.Op{Name: "FileEntry:deleteFile", Method: "DELETE", Path: filesPattern,
		Summary: "Delete a file (204, 404)",
		Handler: f.handleDelete})
	rt.Handle(api.Op{Name: "FileEntry:deleteDirectory", Method: "DELETE", Path: filesPattern,
		Summary: "With a trailing slash: delete a directory; 400 while it holds files; an empty directory does not exist (404)",
		Match:   isDir,
		Handler: f.handleDeleteDir})
	rt.Handle(api.Op{Name: "FileEntry:findFiles", Method: "GET", Path: "/v1/files",
		Summary: "Files whose path starts with prefix, ascending by filePath; scope, prefix, limit, last_evaluated_key",
		Handler: f.handleFind})
}

// ---------------------------------------------------------------------------
// Paths

func badPath(format string, args ...any) error {
	return api.Errorf(http.StatusBadRequest, api.CodeBadPath, format, args...)
}

// CleanPath validates a file path ("/a/b.jpg" or "a/b.jpg") and returns it
// without the leading slash. dir says the path names a directory, which
// may then be "" (the root) and may end in "/".
func CleanPath(p string, dir bool) (string, error) {
	p = strings.TrimPrefix(p, "/")
	if dir {
		p = strings.TrimSuffix(p, "/")
	}
	if len(p)+1 > MaxPathBytes {
		return "", badPath("path is %d bytes long; at most %d are allowed", len(p)+1, MaxPathBytes)
	}
	if p == "" {
		if dir {
			return "", nil
		}
		return "", badPath("path names no file")
	}
	if !utf8.ValidString(p) {
		return "", badPath("path is not valid UTF-8")
	}
	segs := strings.Split(p, "/")
	for _, s := range segs {
		switch {
		case s == "":
			return "", badPath("path %q has an empty segment", "/"+p)
		case s == "." || s == "..":
			return "", badPath("path must not contain . or .. segments")
		case strings.ContainsRune(s, '\\'):
			return "", badPath("path must not contain a backslash")
		case strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
			return "", badPath("path must not contain control characters")
		case len(s) > MaxSegmentBytes:
			return "", badPath("path segment %.20q… is %d bytes long; at most %d are allowed", s, len(s), MaxSegmentBytes)
		case strings.HasSuffix(s, attrsSuffix):
			return "", badPath("path segment %q ends in %s, which is reserved", s, attrsSuffix)
		}
	}
	levels := len(segs) - 1
	if dir {
		levels = len(segs)
	}
	if levels > MaxPathLevels {
		return "", badPath("path has %d directory levels; at most %d are allowed", levels, MaxPathLevels)
	}
	return p, nil
}

func checkScope(scope string, write bool) error {
	switch {
	case scope == "private":
		return nil
	case scope == "public" && !write:
		return nil
	case scope == "public":
		return api.Invalid("scope public is read-only; files are written to scope private")
	}
	return api.Invalid("scope %q is not supported; use private", scope)
}

func (f *Files) key(operatorID, p string) string { return operatorID + "/" + p }

// entryFor builds a file's FileEntry from its attributes.
func entryFor(p string, a *gblob.Attributes) *FileEntry {
	e := pathEntry(p, false)
	e.ContentType = a.ContentType
	e.ContentLength = a.Size
	e.ETag = strings.Trim(a.ETag, `"`)
	e.LastModifiedTime = a.ModTime.UnixMilli()
	if v, err := strconv.ParseInt(a.Metadata[metaModified], 10, 64); err == nil && v > 0 {
		e.LastModifiedTime = v
	}
	e.CreatedTime = e.LastModifiedTime
	if v, err := strconv.ParseInt(a.Metadata[metaCreated], 10, 64); err == nil && v > 0 && v <= e.LastModifiedTime {
		e.CreatedTime = v
	}
	for k, v := range a.Metadata {
		if name, ok := strings.CutPrefix(k, metaUser); ok && name != "" {
			if e.Metadata == nil {
				e.Metadata = map[string]string{}
			}
			e.Metadata[name] = v
		}
	}
	return e
}

// MaxMetadataBytes bounds a file's user metadata: its keys and URL-escaped
// values together (S3 allows 2 KiB of metadata in all, escaped as URLs).
const MaxMetadataBytes = 1024

var metaKeyRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// userMetadata checks user metadata and returns it as stored: keys are
// case-insensitive (every store lowercases them) and carry metaUser.
func userMetadata(meta map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(meta)+2)
	size := 0
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := meta[k]
		lk := strings.ToLower(k)
		if !metaKeyRE.MatchString(lk) {
			return nil, api.Invalid("metadata key %q must be 1 to 64 characters of a-z 0-9 _ - (case-insensitive), starting with a letter or digit", k)
		}
		if _, dup := out[metaUser+lk]; dup {
			return nil, api.Invalid("metadata key %q is given twice (keys are case-insensitive)", k)
		}
		if !utf8.ValidString(v) {
			return nil, api.Invalid("metadata %s: the value is not valid UTF-8", k)
		}
		size += len(lk) + len(url.QueryEscape(v))
		out[metaUser+lk] = v
	}
	if size > MaxMetadataBytes {
		return nil, api.Invalid("metadata is %d bytes (keys and URL-escaped values); at most %d are allowed", size, MaxMetadataBytes)
	}
	return out, nil
}

// pathEntry fills the path fields for p (no leading slash).
func pathEntry(p string, isDir bool) *FileEntry {
	e := &FileEntry{FilePath: "/" + p, IsDirectory: isDir, Directory: "/"}
	name := p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		e.Directory, name = "/"+p[:i+1], p[i+1:]
	}
	e.Filename = name
	if isDir {
		e.FilePath += "/"
	}
	return e
}

// dirExists reports whether any object lies under prefix.
func (f *Files) dirExists(ctx context.Context, prefix string) (bool, error) {
	objs, _, err := f.store.Bucket.ListPage(ctx, gblob.FirstPageToken, 1, &gblob.ListOptions{Prefix: prefix})
	if err != nil {
		return false, err
	}
	return len(objs) > 0, nil
}

// ---------------------------------------------------------------------------
// Go API (used by exports and remote commands as well as HTTP)

// abortReader cancels the upload's context when the body fails, so the
// store discards the partial object instead of committing it.
type abortReader struct {
	r      io.Reader
	cancel context.CancelFunc
	err    error
}

func (a *abortReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if err != nil && err != io.EOF {
		a.err = err
		a.cancel()
	}
	return n, err
}

// Put stores body at filePath for the operator. It reports whether the
// file was created (false: overwritten). A body over MaxFileBytes (413)
// or one that fails while read (400) stores nothing and leaves any
// previous file in place.
func (f *Files) Put(ctx context.Context, operatorID, filePath, contentType string, body io.Reader) (*FileEntry, bool, error) {
	return f.PutWithMetadata(ctx, operatorID, filePath, contentType, nil, body)
}

// PutWithMetadata is Put storing user metadata with the file (see
// FileEntry.Metadata). Keys are case-insensitive and come back in lower
// case: 1 to 64 characters of a-z 0-9 _ -; keys and values together are
// at most MaxMetadataBytes. An overwrite replaces the metadata too.
func (f *Files) PutWithMetadata(ctx context.Context, operatorID, filePath, contentType string, meta map[string]string, body io.Reader) (*FileEntry, bool, error) {
	p, err := CleanPath(filePath, false)
	if err != nil {
		return nil, false, err
	}
	md, err := userMetadata(meta)
	if err != nil {
		return nil, false, err
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	if _, _, err := mime.ParseMediaType(contentType); err != nil || len(contentType) > 255 {
		return nil, false, api.Invalid("Content-Type %q is not a valid media type", contentType)
	}
	key := f.key(operatorID, p)
	if len(key) > MaxKeyBytes {
		return nil, false, badPath("path is %d bytes long; at most %d are allowed here (the store's key limit of %d bytes includes a %d-byte operator prefix)",
			len(p)+1, MaxKeyBytes-len(operatorID), MaxKeyBytes, len(operatorID)+1)
	}
	// A path cannot be both a file and a directory: every store then
	// behaves like a file system.
	segs := strings.Split(p, "/")
	for i := 1; i < len(segs); i++ {
		anc := strings.Join(segs[:i], "/")
		if ok, err := f.store.Bucket.Exists(ctx, f.key(operatorID, anc)); err != nil {
			return nil, false, err
		} else if ok {
			return nil, false, api.Conflict("/%s is a file, so it cannot be a directory of /%s", anc, p)
		}
	}
	if ok, err := f.dirExists(ctx, key+"/"); err != nil {
		return nil, false, err
	} else if ok {
		return nil, false, api.Conflict("/%s is a directory", p)
	}

	now := time.Now().UnixMilli()
	created, createdMS := true, now
	switch a, err := f.store.Bucket.Attributes(ctx, key); {
	case err == nil:
		created = false
		createdMS = entryFor(p, a).CreatedTime
	case !blob.IsNotFound(err):
		return nil, false, err
	default:
		f.store.PruneDirs(key) // an empty directory left on disk where the file goes
	}

	if f.opts.MaxFileBytes > 0 {
		// A nil ResponseWriter: only the limit applies (HTTP callers have
		// already wrapped the request body with theirs).
		body = http.MaxBytesReader(nil, io.NopCloser(body), f.opts.MaxFileBytes)
	}
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ar := &abortReader{r: body, cancel: cancel}
	md[metaCreated] = strconv.FormatInt(createdMS, 10)
	md[metaModified] = strconv.FormatInt(now, 10)
	err = f.store.Bucket.Upload(uctx, key, ar, &gblob.WriterOptions{ContentType: contentType, Metadata: md})
	if ar.err != nil {
		err = ar.err
	}
	if err != nil {
		if created {
			f.store.PruneDirs(key)
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, false, api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "file exceeds %d bytes", mbe.Limit)
		}
		if ar.err != nil {
			return nil, false, api.BadRequest("reading the file body: %v", ar.err)
		}
		return nil, false, err
	}
	a, err := f.store.Bucket.Attributes(ctx, key)
	if err != nil {
		return nil, false, err
	}
	e := entryFor(p, a)
	kind := FileUpdated
	if created {
		kind = FileCreated
	}
	f.changed(ctx, FileEvent{OperatorID: operatorID, Path: e.FilePath, Kind: kind, ContentType: e.ContentType,
		Size: e.ContentLength, Time: time.UnixMilli(e.LastModifiedTime)})
	return e, created, nil
}

// Stat returns the FileEntry of a file, or of a directory when no file
// but files below it exist; api 404 otherwise.
func (f *Files) Stat(ctx context.Context, operatorID, filePath string) (*FileEntry, error) {
	p, err := CleanPath(filePath, false)
	if err != nil {
		return nil, err
	}
	key := f.key(operatorID, p)
	a, err := f.store.Bucket.Attributes(ctx, key)
	if err == nil {
		return entryFor(p, a), nil
	}
	if !blob.IsNotFound(err) {
		return nil, err
	}
	if ok, err := f.dirExists(ctx, key+"/"); err != nil {
		return nil, err
	} else if ok {
		return pathEntry(p, true), nil
	}
	return nil, api.NotFound("file /%s not found", p)
}

// SignedURL returns an expiring download URL for a file (ttl 0: the
// configured lifetime).
func (f *Files) SignedURL(ctx context.Context, operatorID, filePath string, ttl time.Duration) (string, error) {
	p, err := CleanPath(filePath, false)
	if err != nil {
		return "", err
	}
	if ttl <= 0 {
		ttl = f.opts.SignedURLTTL
	}
	return f.store.SignedURL(ctx, f.key(operatorID, p), ttl)
}

// Open reads a file: its entry and a reader the caller closes; api 404
// when there is no such file.
func (f *Files) Open(ctx context.Context, operatorID, filePath string) (*FileEntry, io.ReadCloser, error) {
	p, err := CleanPath(filePath, false)
	if err != nil {
		return nil, nil, err
	}
	rd, err := f.store.Bucket.NewReader(ctx, f.key(operatorID, p), nil)
	if blob.IsNotFound(err) {
		return nil, nil, api.NotFound("file /%s not found", p)
	} else if err != nil {
		return nil, nil, err
	}
	e := pathEntry(p, false)
	e.ContentType, e.ContentLength, e.LastModifiedTime = rd.ContentType(), rd.Size(), rd.ModTime().UnixMilli()
	return e, rd, nil
}

// Delete removes a file.
func (f *Files) Delete(ctx context.Context, operatorID, filePath string) error {
	p, err := CleanPath(filePath, false)
	if err != nil {
		return err
	}
	key := f.key(operatorID, p)
	ev := FileEvent{OperatorID: operatorID, Path: "/" + p, Kind: FileDeleted}
	if f.onChange.Load() != nil {
		// Best effort: the event names what was deleted.
		if a, err := f.store.Bucket.Attributes(ctx, key); err == nil {
			ev.ContentType, ev.Size = a.ContentType, a.Size
		}
	}
	if err := f.store.Bucket.Delete(ctx, key); err != nil {
		if blob.IsNotFound(err) {
			return api.NotFound("file /%s not found", p)
		}
		return err
	}
	f.store.PruneDirs(key)
	ev.Time = time.Now()
	f.changed(ctx, ev)
	return nil
}

// ---------------------------------------------------------------------------
// HTTP handlers

func (f *Files) handlePut(w http.ResponseWriter, r *http.Request) {
	if err := checkScope(r.PathValue("scope"), true); err != nil {
		api.WriteError(w, r, err)
		return
	}
	p, err := CleanPath(r.PathValue("path"), false)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if r.ContentLength > f.opts.MaxFileBytes {
		api.WriteError(w, r, api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "file of %d bytes exceeds %d bytes", r.ContentLength, f.opts.MaxFileBytes))
		return
	}
	body := http.MaxBytesReader(w, r.Body, f.opts.MaxFileBytes)
	e, created, err := f.Put(r.Context(), api.PrincipalFrom(r.Context()).OperatorID, p, r.Header.Get("Content-Type"), body)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	api.WriteJSON(w, status, e)
}

// readPath checks the scope and path of a read; public is an empty scope.
func readPath(r *http.Request, dir bool) (string, error) {
	scope := r.PathValue("scope")
	if err := checkScope(scope, false); err != nil {
		return "", err
	}
	p, err := CleanPath(r.PathValue("path"), dir)
	if err != nil {
		return "", err
	}
	if scope == "public" && !(dir && p == "") {
		return "", api.NotFound("/%s not found in scope public", p)
	}
	return p, nil
}

func (f *Files) handleGet(w http.ResponseWriter, r *http.Request) {
	p, err := readPath(r, false)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	op := api.PrincipalFrom(r.Context()).OperatorID
	e, err := f.Stat(r.Context(), op, p)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	loc := ""
	if e.IsDirectory {
		loc = "/v1/files/" + r.PathValue("scope") + escapePath(e.FilePath)
	} else if loc, err = f.SignedURL(r.Context(), op, p, 0); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", loc)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func (f *Files) handleMetadata(w http.ResponseWriter, r *http.Request) {
	p, err := readPath(r, false)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	e, err := f.Stat(r.Context(), api.PrincipalFrom(r.Context()).OperatorID, p)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if e.ETag != "" {
		w.Header().Set("ETag", `"`+e.ETag+`"`)
	}
	api.WriteJSON(w, http.StatusOK, e)
}

func (f *Files) handleDelete(w http.ResponseWriter, r *http.Request) {
	if err := checkScope(r.PathValue("scope"), true); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := f.Delete(r.Context(), api.PrincipalFrom(r.Context()).OperatorID, r.PathValue("path")); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *Files) handleDeleteDir(w http.ResponseWriter, r *http.Request) {
	if err := checkScope(r.PathValue("scope"), true); err != nil {
		api.WriteError(w, r, err)
		return
	}
	p, err := CleanPath(r.PathValue("path"), true)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if p == "" {
		api.WriteError(w, r, api.Invalid("the root directory cannot be deleted"))
		return
	}
	ok, err := f.dirExists(r.Context(), f.key(api.PrincipalFrom(r.Context()).OperatorID, p)+"/")
	switch {
	case err != nil:
		api.WriteError(w, r, err)
	case ok:
		api.WriteError(w, r, api.Invalid("directory /%s/ is not empty; delete its files first", p))
	default:
		// Directories exist only while they hold files, so an empty one
		// is already gone.
		api.WriteError(w, r, api.NotFound("directory /%s/ not found", p))
	}
}

// listing is one page of entries in ascending order of sortKey.
type listing struct {
	limit int
	items []listItem
}

type listItem struct {
	sortKey string // filename (listFiles) or filePath (findFiles)
	path    string // without leading slash
	isDir   bool
}

// add inserts it in order, keeping at most limit+1 items.
func (l *listing) add(it listItem) {
	i := sort.Search(len(l.items), func(i int) bool {
		a := l.items[i]
		return a.sortKey > it.sortKey || (a.sortKey == it.sortKey && a.isDir && !it.isDir)
	})
	if i > l.limit {
		return
	}
	l.items = append(l.items, listItem{})
	copy(l.items[i+1:], l.items[i:])
	l.items[i] = it
	if len(l.items) > l.limit+1 {
		l.items = l.items[:l.limit+1]
	}
}

// full reports whether more items than the limit are held and none still
// to come (all sorting at or after bound) can enter the page.
// trim cuts the listing to its limit and reports whether more remain.
func (l *listing) trim() (more bool) {
	if more = len(l.items) > l.limit; more {
		l.items = l.items[:l.limit]
	}
	return more
}

// scan lists objects and hands each to visit until visit returns true.
func (f *Files) scan(ctx context.Context, opts *gblob.ListOptions, visit func(*gblob.ListObject) bool) error {
	it := f.store.Bucket.List(opts)
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if visit(obj) {
			return nil
		}
	}
}

// writePage answers one page of a listing, naming the next page's key.
func (f *Files) writePage(w http.ResponseWriter, r *http.Request, op string, l *listing, more bool) {
	out, err := f.entries(r.Context(), op, l.items)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if more {
		w.Header().Set("x-soracom-next-key", l.items[len(l.items)-1].sortKey)
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (l *listing) full(bound string) bool {
	return len(l.items) > l.limit && l.items[l.limit].sortKey < bound
}

// listBound is the smallest name an entry listed after the key suffix rel
// can have: keys arrive in order, and a directory "n/" can come after a
// key "n-x" although "n" sorts before it, so the bound is rel cut at its
// first byte below '/'.
func listBound(rel string) string {
	for i := 0; i < len(rel); i++ {
		if rel[i] < '/' {
			return rel[:i]
		}
	}
	return rel
}

func pageParams(r *http.Request) (int, string, error) {
	limit, err := api.QueryInt(r, "limit", defaultListLimit, 1, maxListLimit)
	if err != nil {
		return 0, "", err
	}
	return int(limit), r.URL.Query().Get("last_evaluated_key"), nil
}

func (f *Files) handleList(w http.ResponseWriter, r *http.Request) {
	p, err := readPath(r, true)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	limit, after, err := pageParams(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if strings.Contains(after, "/") {
		api.WriteError(w, r, api.BadRequest("last_evaluated_key must be a file name from the previous page, without slashes"))
		return
	}
	if r.PathValue("scope") == "public" {
		api.WriteJSON(w, http.StatusOK, []*FileEntry{})
		return
	}
	ctx := r.Context()
	op := api.PrincipalFrom(ctx).OperatorID
	base := "" // path prefix of the entries, without leading slash
	if p != "" {
		base = p + "/"
	}
	prefix := f.key(op, base)
	startAfter := ""
	if after != "" {
		startAfter = prefix + after
	}
	l := &listing{limit: limit}
	err = f.scan(ctx, f.store.ListOptions(prefix, "/", startAfter), func(obj *gblob.ListObject) bool {
		rel := strings.TrimPrefix(obj.Key, prefix)
		name := strings.TrimSuffix(rel, "/")
		if name == "" || strings.Contains(name, "/") {
			return false // a "folder marker" object some tools create
		}
		if name > after {
			l.add(listItem{sortKey: name, path: base + name, isDir: obj.IsDir})
		}
		return f.store.Ordered() && l.full(listBound(rel))
	})
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	more := l.trim()
	if len(l.items) == 0 && p != "" {
		exists := false
		if after != "" {
			if exists, err = f.dirExists(ctx, prefix); err != nil {
				api.WriteError(w, r, err)
				return
			}
		}
		if !exists {
			api.WriteError(w, r, api.NotFound("directory /%s/ not found", p))
			return
		}
	}
	f.writePage(w, r, op, l, more)
}

func (f *Files) handleFind(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	scope := q.Get("scope")
	if scope == "" {
		scope = "private"
	}
	if err := checkScope(scope, false); err != nil {
		api.WriteError(w, r, err)
		return
	}
	limit, after, err := pageParams(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	prefix := strings.TrimPrefix(q.Get("prefix"), "/")
	// The prefix may end in a partial name or a slash; its complete
	// segments follow the path rules.
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		if _, err := CleanPath(prefix[:i+1], true); err != nil {
			api.WriteError(w, r, err)
			return
		}
	}
	if strings.ContainsRune(prefix, '\\') || strings.IndexFunc(prefix, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 || len(prefix)+1 > MaxPathBytes {
		api.WriteError(w, r, badPath("prefix must be a path of at most %d bytes without backslashes or control characters", MaxPathBytes))
		return
	}
	if scope == "public" {
		api.WriteJSON(w, http.StatusOK, []*FileEntry{})
		return
	}
	ctx := r.Context()
	op := api.PrincipalFrom(ctx).OperatorID
	root := f.key(op, "")
	startAfter := ""
	if a := strings.TrimPrefix(after, "/"); a != "" {
		startAfter = root + a
	}
	l := &listing{limit: limit}
	err = f.scan(ctx, f.store.ListOptions(root+prefix, "", startAfter), func(obj *gblob.ListObject) bool {
		rel := strings.TrimPrefix(obj.Key, root)
		if obj.IsDir || rel == "" || strings.HasSuffix(rel, "/") {
			return false
		}
		if fp := "/" + rel; fp > after {
			l.add(listItem{sortKey: fp, path: rel})
		}
		return f.store.Ordered() && len(l.items) > limit
	})
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	more := l.trim()
	f.writePage(w, r, op, l, more)
}

// entries reads the attributes of the listed files (a few at a time) and
// builds their FileEntries. A file deleted meanwhile is left out.
func (f *Files) entries(ctx context.Context, op string, items []listItem) ([]*FileEntry, error) {
	out := make([]*FileEntry, len(items))
	errs := make([]error, len(items))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, it := range items {
		if it.isDir {
			out[i] = pathEntry(it.path, true)
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			a, err := f.store.Bucket.Attributes(ctx, f.key(op, it.path))
			switch {
			case err == nil:
				out[i] = entryFor(it.path, a)
			case !blob.IsNotFound(err):
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	res := make([]*FileEntry, 0, len(items))
	for i := range items {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if out[i] != nil {
			res = append(res, out[i])
		}
	}
	return res, nil
}
