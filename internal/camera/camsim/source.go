package camsim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
)

// sample is one H.264 access unit with 90 kHz timestamps.
type sample struct {
	pts, dts int64
	au       [][]byte
}

// source reads a file one pass at a time.
type source struct {
	path       string
	ts         bool
	raw        []sample // raw Annex-B files are small: kept in memory
	sps, pps   []byte   // first parameter sets (for the SDP)
	frameTicks int64    // nominal frame duration (for the loop seam)
}

func openSource(path string) (*source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	head := make([]byte, 189)
	n, _ := io.ReadFull(f, head)
	f.Close()
	head = head[:n]
	src := &source{path: path, frameTicks: 90000 / 25}
	switch {
	case n >= 189 && head[0] == 0x47 && head[188] == 0x47:
		src.ts = true
	case bytes.HasPrefix(head, []byte{0, 0, 1}) || bytes.HasPrefix(head, []byte{0, 0, 0, 1}):
		if err := src.loadRaw(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s: neither MPEG-TS nor Annex-B H.264 (transcode it with camsim.Transcode)", path)
	}
	// find the first SPS/PPS, the frame duration, and check there is video
	count := 0
	var prevDTS int64
	err = src.each(func(s sample) error {
		for _, n := range s.au {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				if src.sps == nil {
					src.sps = bytes.Clone(n)
				}
			case h264.NALUTypePPS:
				if src.pps == nil {
					src.pps = bytes.Clone(n)
				}
			}
		}
		if count > 0 && s.dts > prevDTS && count < 3 {
			src.frameTicks = s.dts - prevDTS
		}
		prevDTS = s.dts
		count++
		if src.sps != nil && src.pps != nil && count >= 3 {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if count == 0 {
		return nil, fmt.Errorf("%s: no H.264 access units", path)
	}
	if src.sps == nil || src.pps == nil {
		return nil, fmt.Errorf("%s: no SPS/PPS found", path)
	}
	return src, nil
}

// each calls fn for every access unit of the file, in decode order. An error
// from fn stops the pass and is returned.
func (src *source) each(fn func(sample) error) error {
	if !src.ts {
		for _, s := range src.raw {
			if err := fn(s); err != nil {
				return err
			}
		}
		return nil
	}
	f, err := os.Open(src.path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := &mpegts.Reader{R: bufio.NewReaderSize(f, 64<<10)}
	if err := r.Initialize(); err != nil {
		return err
	}
	var track *mpegts.Track
	for _, t := range r.Tracks() {
		if _, ok := t.Codec.(*tscodecs.H264); ok {
			track = t
			break
		}
	}
	if track == nil {
		return errors.New("no H.264 track in the MPEG-TS file")
	}
	var td mpegts.TimeDecoder
	td.Initialize()
	var cbErr error
	r.OnDataH264(track, func(pts, dts int64, au [][]byte) error {
		dts = td.Decode(dts)
		pts = td.Decode(pts)
		if err := fn(sample{pts: pts, dts: dts, au: au}); err != nil {
			cbErr = err
			return err
		}
		return nil
	})
	for {
		if err := r.Read(); err != nil {
			if cbErr != nil {
				return cbErr
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// loadRaw splits an Annex-B file into access units and times them at the
// SPS frame rate (25 fps if the SPS has no timing info).
func (src *source) loadRaw() error {
	data, err := os.ReadFile(src.path)
	if err != nil {
		return err
	}
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(data); err != nil {
		return err
	}
	var aus [][][]byte
	var cur [][]byte
	hasVCL := false
	flush := func() {
		if hasVCL {
			aus = append(aus, cur)
		}
		cur, hasVCL = nil, false
	}
	fps := 0.0
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		typ := h264.NALUType(n[0] & 0x1f)
		switch {
		case typ == h264.NALUTypeAccessUnitDelimiter:
			flush()
			continue
		case typ == h264.NALUTypeSPS || typ == h264.NALUTypePPS || typ == h264.NALUTypeSEI:
			if hasVCL {
				flush()
			}
			if typ == h264.NALUTypeSPS && fps == 0 {
				var sps h264.SPS
				if sps.Unmarshal(n) == nil {
					fps = sps.FPS()
				}
			}
		case typ >= h264.NALUTypeNonIDR && typ <= h264.NALUTypeIDR:
			// first_mb_in_slice == 0 (ue(v) "1" bit) starts a new picture
			if hasVCL && len(n) > 1 && n[1]&0x80 != 0 {
				flush()
			}
			hasVCL = true
		}
		cur = append(cur, n)
	}
	flush()
	if fps <= 0 || fps > 240 {
		fps = 25
	}
	src.frameTicks = int64(90000 / fps)
	for i, au := range aus {
		t := int64(i) * src.frameTicks
		src.raw = append(src.raw, sample{pts: t, dts: t, au: au})
	}
	return nil
}
