package local

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg" // JPEG decoder
	_ "image/png"  // PNG decoder
	"math"
	"runtime"
	"sync"
)

// maxPixels bounds the decoded image size (a 100-megapixel frame is far
// beyond any camera nagare talks to and would cost 300 MB as RGB).
const maxPixels = 100_000_000

// rgbImage is a decoded frame as packed 8-bit RGB, row-major.
type rgbImage struct {
	W, H int
	Pix  []uint8 // len 3·W·H
}

// decodeImage decodes a JPEG or PNG, applies the JPEG's EXIF orientation
// and returns packed RGB.
func decodeImage(data []byte) (*rgbImage, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("local: decode image: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, fmt.Errorf("local: image of %dx%d pixels is out of range", cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("local: decode image: %w", err)
	}
	im := toRGB(img)
	if o := exifOrientation(data); o > 1 {
		im = im.orient(o)
	}
	return im, nil
}

// toRGB converts any image to packed RGB, with fast paths for what the
// stdlib decoders return.
func toRGB(img image.Image) *rgbImage {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := &rgbImage{W: w, H: h, Pix: make([]uint8, 3*w*h)}
	switch src := img.(type) {
	case *image.YCbCr:
		ycbcrToRGB(src, out)
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := out.Pix[3*w*y:]
			srow := src.Pix[(y)*src.Stride:]
			for x := 0; x < w; x++ {
				v := srow[x]
				row[3*x], row[3*x+1], row[3*x+2] = v, v, v
			}
		}
	default:
		rgba, ok := img.(*image.RGBA)
		if !ok || b.Min != (image.Point{}) {
			// Composite over black, like a browser drawing the image on
			// a canvas for tfjs (alpha is premultiplied in RGBA).
			rgba = image.NewRGBA(image.Rect(0, 0, w, h))
			draw.Draw(rgba, rgba.Bounds(), img, b.Min, draw.Src)
		}
		for y := 0; y < h; y++ {
			row := out.Pix[3*w*y:]
			srow := rgba.Pix[y*rgba.Stride:]
			for x := 0; x < w; x++ {
				row[3*x], row[3*x+1], row[3*x+2] = srow[4*x], srow[4*x+1], srow[4*x+2]
			}
		}
	}
	return out
}

// ycbcrToRGB converts a decoded JPEG (any chroma subsampling) with the
// stdlib's fixed-point YCbCr→RGB formula, rows split over the CPUs.
func ycbcrToRGB(src *image.YCbCr, out *rgbImage) {
	b := src.Bounds()
	w, h := out.W, out.H
	dx := 1 // luma columns per chroma sample
	switch src.SubsampleRatio {
	case image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420:
		dx = 2
	case image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410:
		dx = 4
	}
	parallelRows(h, func(y0, y1 int) {
		for y := y0; y < y1; y++ {
			row := out.Pix[3*w*y : 3*w*(y+1)]
			yrow := src.Y[src.YOffset(b.Min.X, b.Min.Y+y):]
			ci0 := src.COffset(b.Min.X, b.Min.Y+y)
			for x := 0; x < w; x++ {
				ci := ci0 + (b.Min.X+x)/dx - b.Min.X/dx
				row[3*x], row[3*x+1], row[3*x+2] = yccToRGB(yrow[x], src.Cb[ci], src.Cr[ci])
			}
		}
	})
}

// yccToRGB is color.YCbCrToRGB (JFIF full range, 16.16 fixed point).
func yccToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy1 := int32(y) * 0x10101
	cb1 := int32(cb) - 128
	cr1 := int32(cr) - 128
	r := yy1 + 91881*cr1
	g := yy1 - 22554*cb1 - 46802*cr1
	bl := yy1 + 116130*cb1
	return clip8(r), clip8(g), clip8(bl)
}

func clip8(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// parallelRows runs f over [0,n) split into one chunk per CPU.
func parallelRows(n int, f func(y0, y1 int)) {
	k := min(runtime.GOMAXPROCS(0), max(1, n/64))
	if k <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < k; i++ {
		y0, y1 := i*n/k, (i+1)*n/k
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(y0, y1)
		}()
	}
	wg.Wait()
}

// toImage returns the frame as an *image.RGBA (for drawing and encoding).
func (im *rgbImage) toImage() *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, im.W, im.H))
	for y := 0; y < im.H; y++ {
		row := im.Pix[3*im.W*y:]
		drow := out.Pix[y*out.Stride:]
		for x := 0; x < im.W; x++ {
			drow[4*x], drow[4*x+1], drow[4*x+2], drow[4*x+3] = row[3*x], row[3*x+1], row[3*x+2], 255
		}
	}
	return out
}

// orient applies an EXIF orientation (2…8) so the result is upright.
func (im *rgbImage) orient(o int) *rgbImage {
	if o < 2 || o > 8 {
		return im
	}
	w, h := im.W, im.H
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := &rgbImage{W: ow, H: oh, Pix: make([]uint8, len(im.Pix))}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var dx, dy int
			switch o {
			case 2: // mirrored horizontally
				dx, dy = w-1-x, y
			case 3: // rotated 180
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored vertically
				dx, dy = x, h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // rotated 90 CW to view
				dx, dy = h-1-y, x
			case 7: // transverse
				dx, dy = h-1-y, w-1-x
			case 8: // rotated 90 CCW to view
				dx, dy = y, w-1-x
			}
			s := 3 * (y*w + x)
			d := 3 * (dy*ow + dx)
			out.Pix[d], out.Pix[d+1], out.Pix[d+2] = im.Pix[s], im.Pix[s+1], im.Pix[s+2]
		}
	}
	return out
}

// exifOrientation returns the EXIF Orientation tag (1…8) of a JPEG, or 0
// when there is none. It reads only the APP1 segment's IFD0.
func exifOrientation(data []byte) int {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return 0
	}
	p := 2
	for p+4 <= len(data) {
		if data[p] != 0xFF {
			return 0
		}
		marker := data[p+1]
		if marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01 {
			p += 2
			continue
		}
		if marker == 0xDA || marker == 0xD9 { // start of scan / end: no more metadata
			return 0
		}
		n := int(binary.BigEndian.Uint16(data[p+2:]))
		if n < 2 || p+2+n > len(data) {
			return 0
		}
		seg := data[p+4 : p+2+n]
		if marker == 0xE1 && len(seg) > 14 && string(seg[:6]) == "Exif\x00\x00" {
			return tiffOrientation(seg[6:])
		}
		p += 2 + n
	}
	return 0
}

func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	off := int(bo.Uint32(t[4:]))
	if off < 8 || off+2 > len(t) {
		return 0
	}
	n := int(bo.Uint16(t[off:]))
	for i := 0; i < n; i++ {
		e := off + 2 + 12*i
		if e+12 > len(t) {
			return 0
		}
		if bo.Uint16(t[e:]) == 0x0112 && bo.Uint16(t[e+2:]) == 3 { // Orientation, SHORT
			v := int(bo.Uint16(t[e+8:]))
			if v >= 1 && v <= 8 {
				return v
			}
			return 0
		}
	}
	return 0
}

// window is a rectangle of the source frame in pixels that is resampled to
// a model input. It may extend past the frame (letterbox padding): samples
// there take the pad colour. src = X0 + x·W/outW maps model-input pixels
// back to frame pixels.
type window struct {
	X0, Y0 int // top-left in frame pixels (may be negative)
	W, H   int // size in frame pixels
}

// letterbox returns the square window that contains the whole region r of
// the frame, with r centred and the rest padded.
func letterbox(r image.Rectangle) window {
	w, h := r.Dx(), r.Dy()
	s := max(w, h)
	return window{X0: r.Min.X - (s-w)/2, Y0: r.Min.Y - (s-h)/2, W: s, H: s}
}

// toFrame maps a point of the outW×outH model input back to frame pixels.
func (win window) toFrame(x, y float64, outW, outH int) (float64, float64) {
	return float64(win.X0) + x*float64(win.W)/float64(outW), float64(win.Y0) + y*float64(win.H)/float64(outH)
}

// axisTaps precomputes, for each output index, the two source indices
// (relative to the window) and the weight of the second one, following
// tfjs ResizeBilinear with align_corners=false, half_pixel_centers=false:
// src = dst·in/out, lo = floor(src), hi = min(in−1, ceil(src)).
func axisTaps(in, out int) (lo, hi []int, frac []float32) {
	lo, hi, frac = make([]int, out), make([]int, out), make([]float32, out)
	ratio := float64(in) / float64(out)
	for i := 0; i < out; i++ {
		src := ratio * float64(i)
		l := int(math.Floor(src))
		h := min(in-1, int(math.Ceil(src)))
		lo[i], hi[i], frac[i] = max(l, 0), h, float32(src-float64(l))
	}
	return lo, hi, frac
}

// resample resizes the window to outW×outH (tfjs bilinear semantics) and
// returns float32 RGB, interleaved, values 0…255. Pixels outside the frame
// read as pad.
func (im *rgbImage) resample(win window, outW, outH int, pad [3]float32) []float32 {
	xl, xh, xf := axisTaps(win.W, outW)
	yl, yh, yf := axisTaps(win.H, outH)
	out := make([]float32, 3*outW*outH)
	// Row buffers: each source row needed, horizontally interpolated once.
	rowA := make([]float32, 3*outW)
	rowB := make([]float32, 3*outW)
	lastA, lastB := math.MinInt, math.MinInt
	hrow := func(sy int, dst []float32) {
		fy := win.Y0 + sy
		if fy < 0 || fy >= im.H {
			for x := 0; x < outW; x++ {
				dst[3*x], dst[3*x+1], dst[3*x+2] = pad[0], pad[1], pad[2]
			}
			return
		}
		src := im.Pix[3*im.W*fy : 3*im.W*(fy+1)]
		px := func(sx int) (float32, float32, float32) {
			fx := win.X0 + sx
			if fx < 0 || fx >= im.W {
				return pad[0], pad[1], pad[2]
			}
			return float32(src[3*fx]), float32(src[3*fx+1]), float32(src[3*fx+2])
		}
		for x := 0; x < outW; x++ {
			r0, g0, b0 := px(xl[x])
			r1, g1, b1 := px(xh[x])
			f := xf[x]
			dst[3*x] = r0 + (r1-r0)*f
			dst[3*x+1] = g0 + (g1-g0)*f
			dst[3*x+2] = b0 + (b1-b0)*f
		}
	}
	for y := 0; y < outH; y++ {
		a, b := yl[y], yh[y]
		switch {
		case a == lastA:
		case a == lastB:
			rowA, rowB = rowB, rowA
			lastA, lastB = lastB, lastA
		default:
			hrow(a, rowA)
			lastA = a
		}
		if b != lastB {
			if b == lastA {
				copy(rowB, rowA)
			} else {
				hrow(b, rowB)
			}
			lastB = b
		}
		f := yf[y]
		o := out[3*outW*y : 3*outW*(y+1)]
		for i := range o {
			o[i] = rowA[i] + (rowB[i]-rowA[i])*f
		}
	}
	return out
}

// cropper samples a box of the frame like tf.image.cropAndResize with the
// box normalised by the frame size: for an outW×outH crop,
// y = y1n·(H−1) + i·(y2n−y1n)·(H−1)/(outH−1) (the centre when outH = 1);
// samples outside the frame are 0 (the extrapolation value).
type cropper struct {
	im                 *rgbImage
	nx1, ny1, nx2, ny2 float64
	outW, outH         int
}

func (im *rgbImage) cropper(x1, y1, x2, y2 float64, outW, outH int) cropper {
	W, H := float64(im.W), float64(im.H)
	return cropper{im: im, nx1: x1 / W, ny1: y1 / H, nx2: x2 / W, ny2: y2 / H, outW: outW, outH: outH}
}

func cropCoord(n1, n2, size float64, i, out int) float64 {
	if out == 1 {
		return 0.5 * (n1 + n2) * (size - 1)
	}
	return n1*(size-1) + float64(i)*(n2-n1)*(size-1)/float64(out-1)
}

// at returns crop pixel (ox, oy) as RGB 0…255.
func (c cropper) at(ox, oy int) (px [3]float32) {
	im := c.im
	W, H := float64(im.W), float64(im.H)
	sy := cropCoord(c.ny1, c.ny2, H, oy, c.outH)
	sx := cropCoord(c.nx1, c.nx2, W, ox, c.outW)
	if sy < 0 || sy > H-1 || sx < 0 || sx > W-1 {
		return px
	}
	ty := int(math.Floor(sy))
	by := min(int(math.Ceil(sy)), im.H-1)
	fy := float32(sy - float64(ty))
	lx := int(math.Floor(sx))
	rx := min(int(math.Ceil(sx)), im.W-1)
	fx := float32(sx - float64(lx))
	for ch := 0; ch < 3; ch++ {
		tl := float32(im.Pix[3*(ty*im.W+lx)+ch])
		tr := float32(im.Pix[3*(ty*im.W+rx)+ch])
		bl := float32(im.Pix[3*(by*im.W+lx)+ch])
		br := float32(im.Pix[3*(by*im.W+rx)+ch])
		top := tl + (tr-tl)*fx
		bot := bl + (br-bl)*fx
		px[ch] = top + (bot-top)*fy
	}
	return px
}

// cropAndResize samples the box (frame pixels x1,y1,x2,y2) to outW×outH
// (see cropper). Output is float32 RGB 0…255, interleaved.
func (im *rgbImage) cropAndResize(x1, y1, x2, y2 float64, outW, outH int) []float32 {
	c := im.cropper(x1, y1, x2, y2, outW, outH)
	out := make([]float32, 3*outW*outH)
	for oy := 0; oy < outH; oy++ {
		for ox := 0; ox < outW; ox++ {
			px := c.at(ox, oy)
			copy(out[3*(oy*outW+ox):], px[:])
		}
	}
	return out
}

// cropResize equals resizeFloat(cropAndResize(box, cropW, cropH), cropW,
// cropH, 3, outW, outH) but computes only the crop pixels the resize
// reads (for 256 → 64 that is one in 16).
func (im *rgbImage) cropResize(x1, y1, x2, y2 float64, cropW, cropH, outW, outH int) []float32 {
	c := im.cropper(x1, y1, x2, y2, cropW, cropH)
	xl, xh, xf := axisTaps(cropW, outW)
	yl, yh, yf := axisTaps(cropH, outH)
	out := make([]float32, 3*outW*outH)
	lerp := func(a, b [3]float32, f float32) (r [3]float32) {
		for i := range r {
			r[i] = a[i] + (b[i]-a[i])*f
		}
		return r
	}
	row := func(y, x int) [3]float32 {
		a := c.at(xl[x], y)
		if xf[x] == 0 || xh[x] == xl[x] {
			return lerp(a, a, 0)
		}
		return lerp(a, c.at(xh[x], y), xf[x])
	}
	for y := 0; y < outH; y++ {
		for x := 0; x < outW; x++ {
			t := row(yl[y], x)
			v := t
			if yf[y] != 0 && yh[y] != yl[y] {
				v = lerp(t, row(yh[y], x), yf[y])
			}
			copy(out[3*(y*outW+x):], v[:])
		}
	}
	return out
}

// resizeFloat resizes interleaved float32 data with c channels from
// inW×inH to outW×outH (tfjs bilinear, align_corners=false,
// half_pixel_centers=false).
func resizeFloat(src []float32, inW, inH, c, outW, outH int) []float32 {
	xl, xh, xf := axisTaps(inW, outW)
	yl, yh, yf := axisTaps(inH, outH)
	out := make([]float32, c*outW*outH)
	for y := 0; y < outH; y++ {
		top := src[c*inW*yl[y]:]
		bot := src[c*inW*yh[y]:]
		fy := yf[y]
		for x := 0; x < outW; x++ {
			fx := xf[x]
			for k := 0; k < c; k++ {
				tl, tr := top[c*xl[x]+k], top[c*xh[x]+k]
				bl, br := bot[c*xl[x]+k], bot[c*xh[x]+k]
				t := tl + (tr-tl)*fx
				b := bl + (br-bl)*fx
				out[c*(y*outW+x)+k] = t + (b-t)*fy
			}
		}
	}
	return out
}

var errNoImage = errors.New("local: no image")
