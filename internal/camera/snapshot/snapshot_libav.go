//go:build libav

package snapshot

// In-process decoder on libavcodec (Debian: libavcodec-dev libswscale-dev
// libavutil-dev pkg-config gcc). Built only with -tags libav.

// #cgo pkg-config: libavcodec libavutil libswscale
// #include <errno.h>
// #include <stdlib.h>
// #include <libavcodec/avcodec.h>
// #include <libavutil/imgutils.h>
// #include <libavutil/log.h>
// #include <libswscale/swscale.h>
//
// static int nagare_eagain(void) { return AVERROR(EAGAIN); }
// static int nagare_eof(void) { return AVERROR_EOF; }
//
// static int nagare_send(AVCodecContext *ctx, uint8_t *data, int size) {
//   AVPacket *pkt = av_packet_alloc();
//   if (!pkt) return AVERROR(ENOMEM);
//   int res;
//   if (data == NULL) {
//     res = avcodec_send_packet(ctx, NULL);
//   } else {
//     pkt->data = data;
//     pkt->size = size;
//     res = avcodec_send_packet(ctx, pkt);
//   }
//   av_packet_free(&pkt);
//   return res;
// }
//
// // to420 converts src to a new YUV420P frame (caller frees).
// static AVFrame *nagare_to420(AVFrame *src) {
//   AVFrame *dst = av_frame_alloc();
//   if (!dst) return NULL;
//   dst->format = AV_PIX_FMT_YUV420P;
//   dst->width = src->width;
//   dst->height = src->height;
//   if (av_frame_get_buffer(dst, 0) < 0) { av_frame_free(&dst); return NULL; }
//   struct SwsContext *sws = sws_getContext(src->width, src->height, src->format,
//       dst->width, dst->height, AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
//   if (!sws) { av_frame_free(&dst); return NULL; }
//   sws_scale(sws, (const uint8_t * const *)src->data, src->linesize, 0, src->height, dst->data, dst->linesize);
//   sws_freeContext(sws);
//   return dst;
// }
import "C"

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"sync"
	"unsafe"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/nagare-iot/nagare/internal/camera/rtsp"
)

func init() {
	defaultDecoder = func() Decoder { return &LibAV{} }
	C.av_log_set_level(C.AV_LOG_QUIET) // hostile streams would flood stderr
}

// LibAV decodes in-process with libavcodec (cgo; build tag "libav") and
// encodes the JPEG with image/jpeg. Faster than FFmpeg, but a decoder bug hit
// by a hostile bitstream affects the nagare process.
type LibAV struct {
	// MaxConcurrent bounds concurrent decodes (default 2).
	MaxConcurrent int
	// Quality is the image/jpeg quality 1–100 (default 85).
	Quality int
	// AllAUs decodes every access unit and returns the last picture (see FFmpeg.AllAUs).
	AllAUs bool

	once sync.Once
	sem  chan struct{}
}

// JPEG implements Decoder.
func (d *LibAV) JPEG(ctx context.Context, k *rtsp.Keyframe) ([]byte, error) {
	if k == nil || len(k.AUs) == 0 {
		return nil, ErrNoPicture
	}
	if k.Codec != "" && k.Codec != "H264" {
		return nil, fmt.Errorf("snapshot: codec %s not supported", k.Codec)
	}
	d.once.Do(func() {
		n := d.MaxConcurrent
		if n <= 0 {
			n = 2
		}
		d.sem = make(chan struct{}, n)
	})
	select {
	case d.sem <- struct{}{}:
		defer func() { <-d.sem }()
	case <-ctx.Done():
		return nil, fmt.Errorf("snapshot: waiting for a decoder slot: %w", ctx.Err())
	}
	img, err := decodeLibAV(k, d.AllAUs)
	if err != nil {
		return nil, err
	}
	q := d.Quality
	if q <= 0 || q > 100 {
		q = 85
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeLibAV(k *rtsp.Keyframe, allAUs bool) (*image.YCbCr, error) {
	codec := C.avcodec_find_decoder(C.AV_CODEC_ID_H264)
	if codec == nil {
		return nil, fmt.Errorf("snapshot: libavcodec has no H.264 decoder")
	}
	cctx := C.avcodec_alloc_context3(codec)
	if cctx == nil {
		return nil, fmt.Errorf("snapshot: avcodec_alloc_context3 failed")
	}
	defer C.avcodec_free_context(&cctx)
	cctx.thread_count = 1
	if C.avcodec_open2(cctx, codec, nil) < 0 {
		return nil, fmt.Errorf("snapshot: avcodec_open2 failed")
	}
	frame := C.av_frame_alloc()
	if frame == nil {
		return nil, fmt.Errorf("snapshot: av_frame_alloc failed")
	}
	defer C.av_frame_free(&frame)

	n := 1
	if allAUs {
		n = len(k.AUs)
	}
	var last *image.YCbCr
	var lastErr error
	receive := func() error {
		for {
			res := C.avcodec_receive_frame(cctx, frame)
			if res == C.nagare_eagain() || res == C.nagare_eof() {
				return nil
			}
			if res < 0 {
				return fmt.Errorf("snapshot: avcodec_receive_frame: %d", int(res))
			}
			img, err := frameToImage(frame)
			C.av_frame_unref(frame)
			if err != nil {
				return err
			}
			last = img
			if !allAUs {
				return nil
			}
		}
	}
	for i := 0; i < n; i++ {
		au := k.AUs[i]
		if i == 0 && len(k.SPS) > 0 && len(k.PPS) > 0 {
			au = append([][]byte{k.SPS, k.PPS}, withoutParams(au)...)
		}
		annexb, err := h264.AnnexB(au).Marshal()
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		cbuf := C.CBytes(annexb)
		res := C.nagare_send(cctx, (*C.uint8_t)(cbuf), C.int(len(annexb)))
		C.free(cbuf)
		if res < 0 && res != C.nagare_eagain() {
			lastErr = fmt.Errorf("snapshot: avcodec_send_packet: %d", int(res))
			continue
		}
		if err := receive(); err != nil {
			lastErr = err
		}
		if last != nil && !allAUs {
			return last, nil
		}
	}
	C.nagare_send(cctx, nil, 0) // flush: reordered / delayed pictures come out now
	if err := receive(); err != nil {
		lastErr = err
	}
	if last == nil {
		if lastErr != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoPicture, lastErr)
		}
		return nil, ErrNoPicture
	}
	return last, nil
}

func withoutParams(au [][]byte) [][]byte {
	out := make([][]byte, 0, len(au))
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS, h264.NALUTypePPS, h264.NALUTypeAccessUnitDelimiter:
			continue
		}
		out = append(out, n)
	}
	return out
}

// frameToImage copies a decoded frame into Go memory as 4:2:0 YCbCr.
func frameToImage(f *C.AVFrame) (*image.YCbCr, error) {
	src := f
	if f.format != C.AV_PIX_FMT_YUV420P && f.format != C.AV_PIX_FMT_YUVJ420P {
		conv := C.nagare_to420(f)
		if conv == nil {
			return nil, fmt.Errorf("snapshot: cannot convert pixel format %d", int(f.format))
		}
		defer C.av_frame_free(&conv)
		src = conv
	}
	w, h := int(src.width), int(src.height)
	if w <= 0 || h <= 0 || w > 16384 || h > 16384 {
		return nil, fmt.Errorf("snapshot: bad picture size %dx%d", w, h)
	}
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	copyPlane(img.Y, img.YStride, src.data[0], int(src.linesize[0]), w, h)
	cw, ch := (w+1)/2, (h+1)/2
	copyPlane(img.Cb, img.CStride, src.data[1], int(src.linesize[1]), cw, ch)
	copyPlane(img.Cr, img.CStride, src.data[2], int(src.linesize[2]), cw, ch)
	return img, nil
}

func copyPlane(dst []byte, dstStride int, src *C.uint8_t, srcStride, w, h int) {
	base := unsafe.Pointer(src)
	for y := 0; y < h; y++ {
		row := unsafe.Slice((*byte)(unsafe.Add(base, y*srcStride)), w)
		copy(dst[y*dstStride:y*dstStride+w], row)
	}
}
