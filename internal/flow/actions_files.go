package flow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/nagare-iot/nagare/internal/harvest"
)

// runFiles writes a Harvest File from a download (url) or from content (a
// string as it is, anything else as JSON), with metadata.
func runFiles(ctx context.Context, c *Call) (any, error) {
	cfg := c.Config
	if c.Deps == nil || c.Deps.Files == nil {
		return nil, Permanent(errors.New("files action: Harvest Files is not configured"))
	}
	path := cfgString(cfg, "path")
	ct := cfgString(cfg, "contentType")
	meta := cfgStrings(cfg, "metadata")
	var (
		e   *harvest.FileEntry
		err error
	)
	if _, fromURL := cfg["url"]; fromURL {
		e, err = filesFromURL(ctx, c, path, ct, meta)
	} else {
		content, has := cfg["content"]
		if !has {
			return nil, Permanent(errors.New("files action: one of url or content is required"))
		}
		var b []byte
		if s, ok := content.(string); ok {
			b = []byte(s)
			if ct == "" {
				ct = "text/plain; charset=utf-8"
			}
		} else if b, err = marshalJSON(content); err != nil {
			return nil, Permanent(fmt.Errorf("content: %v", err))
		} else if ct == "" {
			ct = "application/json"
		}
		e, _, err = c.Deps.Files.PutWithMetadata(ctx, c.OperatorID, path, ct, meta, bytes.NewReader(b))
		if err != nil {
			err = apiError("files "+path, err)
		}
	}
	if err != nil {
		return nil, err
	}
	return entryValue(e)
}

// errDownloadTooLarge marks a download that passed maxBytes.
var errDownloadTooLarge = errors.New("download too large")

// cappedReader fails once more than max bytes were read, and remembers
// the error its reader failed with.
type cappedReader struct {
	r   io.Reader
	n   int64
	max int64
	err error
}

func (c *cappedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		c.err = errDownloadTooLarge
		return n, c.err
	}
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

func filesFromURL(ctx context.Context, c *Call, path, ct string, meta map[string]string) (*harvest.FileEntry, error) {
	u, err := actionURL("url", cfgString(c.Config, "url"))
	if err != nil {
		return nil, err
	}
	var red redactor
	if pw, ok := u.User.Password(); ok {
		red.add(pw)
	}
	limit := int64(cfgInt(c.Config, "maxBytes", 32<<20))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, Permanent(fmt.Errorf("download request: %v", err))
	}
	req.Header.Set("User-Agent", "nagare-flow")
	resp, err := actionClient(c).Do(req)
	if err != nil {
		return nil, requestError("download", err, red)
	}
	defer resp.Body.Close()
	if err := statusError("download", resp, red); err != nil {
		return nil, err
	}
	tooLarge := Permanent(fmt.Errorf("the download exceeds maxBytes (%d bytes); nothing was stored", limit))
	if resp.ContentLength > limit {
		return nil, tooLarge
	}
	if ct == "" {
		ct = resp.Header.Get("Content-Type")
		if _, _, err := mime.ParseMediaType(ct); err != nil {
			ct = "application/octet-stream"
		}
	}
	body := &cappedReader{r: resp.Body, max: limit}
	e, _, err := c.Deps.Files.PutWithMetadata(ctx, c.OperatorID, path, ct, meta, body)
	switch {
	case err == nil:
		return e, nil
	case errors.Is(body.err, errDownloadTooLarge):
		return nil, tooLarge
	case body.err != nil:
		// The download broke off: nothing was stored, try again.
		return nil, requestError("download", body.err, red)
	}
	return nil, apiError("files "+path, err)
}

// entryValue is a FileEntry as a plain JSON value.
func entryValue(e *harvest.FileEntry) (any, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}
