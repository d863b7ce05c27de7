//go:build libav

package snapshot_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nagare-iot/nagare/internal/camera/camsim"
	"github.com/nagare-iot/nagare/internal/camera/camtest"
	"github.com/nagare-iot/nagare/internal/camera/rtsp"
	"github.com/nagare-iot/nagare/internal/camera/snapshot"
)

func TestLibAV(t *testing.T) {
	t.Parallel()
	if _, ok := snapshot.Default().(*snapshot.LibAV); !ok {
		t.Fatalf("Default() = %T in a libav build", snapshot.Default())
	}
	k, file := grab(t, camsim.KindTestsrc)
	ctx := context.Background()
	b, err := (&snapshot.LibAV{}).JPEG(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	decodeJPEG(t, b, 320, 240)
	if idx, diff := camtest.MatchFrame(t, file, b); idx%10 != 0 || diff > 10 {
		t.Fatalf("picture matches frame %d (diff %.1f)", idx, diff)
	}
	garbage := &rtsp.Keyframe{Codec: "H264", SPS: []byte{0x67, 0xff, 0xff}, PPS: []byte{0x68, 0xff}, AUs: [][][]byte{{{0x65, 1, 2, 3, 4, 5}}}}
	if _, err := (&snapshot.LibAV{}).JPEG(ctx, garbage); !errors.Is(err, snapshot.ErrNoPicture) {
		t.Fatalf("garbage: %v", err)
	}
}
