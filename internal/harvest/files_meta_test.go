package harvest_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/blob"
	"github.com/nagare-iot/nagare/internal/harvest"
)

func openFiles(t *testing.T, storeURL string) *harvest.Files {
	t.Helper()
	dir := t.TempDir()
	st, err := blob.Open(context.Background(), storeURL, dir, []byte("0123456789abcdef0123456789abcdef"), "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return harvest.NewFiles(st, harvest.FilesOptions{MaxFileBytes: 100, SignedURLTTL: time.Minute})
}

func TestFilesMetadata(t *testing.T) {
	s3URL, _ := filesS3(t)
	for name, storeURL := range map[string]string{"file": "", "mem": "mem://", "s3": s3URL} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			f := openFiles(t, storeURL)
			meta := map[string]string{"Camera": "cam-1", "note": "日本語 & spaces", "created_ms": "1", "x-y_z": ""}
			e, created, err := f.PutWithMetadata(ctx, "OP1", "/cams/a.jpg", "image/jpeg", meta, strings.NewReader("jpeg"))
			if err != nil || !created {
				t.Fatalf("put: %v %v", created, err)
			}
			want := map[string]string{"camera": "cam-1", "note": "日本語 & spaces", "created_ms": "1", "x-y_z": ""}
			if !reflect.DeepEqual(e.Metadata, want) {
				t.Fatalf("metadata %v; want %v", e.Metadata, want)
			}
			// A user key named like an internal one does not disturb it.
			if e.CreatedTime < 1e12 || e.CreatedTime != e.LastModifiedTime {
				t.Fatalf("times %d %d", e.CreatedTime, e.LastModifiedTime)
			}
			st, err := f.Stat(ctx, "OP1", "/cams/a.jpg")
			if err != nil || !reflect.DeepEqual(st.Metadata, want) {
				t.Fatalf("stat: %+v %v", st, err)
			}
			// Overwriting replaces the metadata; Put stores none. (gofakes3
			// merges metadata on PUT, unlike S3, so the fake is left out.)
			e, _, err = f.Put(ctx, "OP1", "/cams/a.jpg", "image/jpeg", strings.NewReader("jpeg2"))
			if err != nil || (name != "s3" && e.Metadata != nil) {
				t.Fatalf("overwrite: %+v %v", e, err)
			}
		})
	}

	f := openFiles(t, "mem://")
	for name, meta := range map[string]map[string]string{
		"bad key":        {"no spaces": "v"},
		"empty key":      {"": "v"},
		"long key":       {strings.Repeat("k", 65): "v"},
		"case duplicate": {"Key": "a", "key": "b"},
		"bad value":      {"k": "\xff"},
		"too large":      {"k": strings.Repeat("v", harvest.MaxMetadataBytes)},
	} {
		_, _, err := f.PutWithMetadata(t.Context(), "OP1", "/m/"+strings.ReplaceAll(name, " ", "-"), "text/plain", meta, strings.NewReader("x"))
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeInvalid || !strings.Contains(ae.Message, "metadata") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestFilesOnChange(t *testing.T) {
	ctx := t.Context()
	f := openFiles(t, "")
	var mu sync.Mutex
	var got []harvest.FileEvent
	f.SetOnChange(func(_ context.Context, ev harvest.FileEvent) {
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	})
	if _, _, err := f.Put(ctx, "OP1", "cams/a.jpg", "image/jpeg", strings.NewReader("1234")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.PutWithMetadata(ctx, "OP1", "/cams/a.jpg", "image/png", map[string]string{"k": "v"}, strings.NewReader("123456")); err != nil {
		t.Fatal(err)
	}
	// Failures change nothing and report nothing.
	if _, _, err := f.Put(ctx, "OP1", "/cams/a.jpg", "image/png", strings.NewReader(strings.Repeat("x", 101))); err == nil {
		t.Fatal("oversized put stored")
	}
	if _, _, err := f.Put(ctx, "OP1", "/cams/a.jpg/b", "image/png", strings.NewReader("x")); err == nil {
		t.Fatal("file below a file stored")
	}
	if err := f.Delete(ctx, "OP1", "/cams/a.jpg"); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(ctx, "OP1", "/cams/a.jpg"); err == nil {
		t.Fatal("second delete succeeded")
	}
	f.SetOnChange(nil)
	if _, _, err := f.Put(ctx, "OP1", "/cams/b.jpg", "image/jpeg", strings.NewReader("1")); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	want := []harvest.FileEvent{
		{OperatorID: "OP1", Path: "/cams/a.jpg", Kind: harvest.FileCreated, ContentType: "image/jpeg", Size: 4},
		{OperatorID: "OP1", Path: "/cams/a.jpg", Kind: harvest.FileUpdated, ContentType: "image/png", Size: 6},
		{OperatorID: "OP1", Path: "/cams/a.jpg", Kind: harvest.FileDeleted, ContentType: "image/png", Size: 6},
	}
	if len(got) != len(want) {
		t.Fatalf("events %+v", got)
	}
	for i := range want {
		if got[i].Time.IsZero() {
			t.Errorf("event %d has no time", i)
		}
		got[i].Time = time.Time{}
		if got[i] != want[i] {
			t.Errorf("event %d = %+v; want %+v", i, got[i], want[i])
		}
	}
}
