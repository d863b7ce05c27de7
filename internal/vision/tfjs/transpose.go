package tfjs

// transposeInto writes src (shape srcShape, row-major) transposed by perm
// into dst: dst axis i is src axis perm[i] (numpy.transpose semantics).
//
// The permutation is first simplified (size-1 axes dropped, runs of axes
// that stay adjacent merged). What remains is usually a plain copy or a
// batched 2-D transpose, e.g. NCHW<->NHWC = [N, C, H·W] <-> [N, H·W, C],
// which runs as a cache-blocked, parallel tile transpose.
func transposeInto(dst, src []float32, srcShape, perm []int) {
	shape, p := simplifyPerm(srcShape, perm)
	switch {
	case len(p) <= 1 || isIdentity(p):
		copyParallel(dst, src[:len(dst)])
	case len(p) == 2:
		transpose2D(dst, src, 1, shape[0], shape[1])
	case len(p) == 3 && p[0] == 0 && p[1] == 2 && p[2] == 1:
		transpose2D(dst, src, shape[0], shape[1], shape[2])
	default:
		transposeGeneric(dst, src, shape, p)
	}
}

// simplifyPerm drops size-1 axes and merges src axes that remain adjacent and
// in order in the output.
func simplifyPerm(shape, perm []int) ([]int, []int) {
	// keep only non-unit axes
	keep := make([]int, len(shape)) // old axis -> new index, -1 dropped
	var s []int
	for i, d := range shape {
		if d == 1 {
			keep[i] = -1
			continue
		}
		keep[i] = len(s)
		s = append(s, d)
	}
	var p []int
	for _, a := range perm {
		if keep[a] >= 0 {
			p = append(p, keep[a])
		}
	}
	if len(p) <= 1 {
		return s, p
	}
	// merge: output positions i, i+1 with p[i+1] == p[i]+1
	// groups of src axes
	type group struct{ first, size int }
	var groups []group // in output order
	for i := 0; i < len(p); {
		j := i
		size := s[p[i]]
		for j+1 < len(p) && p[j+1] == p[j]+1 {
			j++
			size *= s[p[j]]
		}
		groups = append(groups, group{p[i], size})
		i = j + 1
	}
	// order groups by their first src axis to get the merged src shape
	order := make([]int, len(groups)) // merged src index of group g
	for g := range groups {
		r := 0
		for h := range groups {
			if groups[h].first < groups[g].first {
				r++
			}
		}
		order[g] = r
	}
	ms := make([]int, len(groups))
	mp := make([]int, len(groups))
	for g, gr := range groups {
		ms[order[g]] = gr.size
		mp[g] = order[g]
	}
	return ms, mp
}

func copyParallel(dst, src []float32) {
	if len(src) < 1<<16 {
		copy(dst, src)
		return
	}
	parallelFor(len(src), grainElems, func(lo, hi int) { copy(dst[lo:hi], src[lo:hi]) })
}

// transpose2D transposes b matrices of r×c (src) into c×r (dst).
func transpose2D(dst, src []float32, b, r, c int) {
	const tile = 32
	rt := (r + tile - 1) / tile
	ct := (c + tile - 1) / tile
	total := b * rt * ct
	parallelFor(total, grain(grainElems, tile*tile), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			bi := t / (rt * ct)
			rem := t % (rt * ct)
			i0 := (rem / ct) * tile
			j0 := (rem % ct) * tile
			i1 := min(i0+tile, r)
			j1 := min(j0+tile, c)
			s := src[bi*r*c:]
			d := dst[bi*r*c:]
			for j := j0; j < j1; j++ {
				drow := d[j*r+i0 : j*r+i1]
				si := i0*c + j
				for k := range drow {
					drow[k] = s[si]
					si += c
				}
			}
		}
	})
}

// transposeGeneric handles any permutation with an odometer over the output;
// when the innermost axis is unchanged it copies contiguous runs.
func transposeGeneric(dst, src []float32, shape, perm []int) {
	r := len(shape)
	sstr := make([]int, r)
	st := 1
	for i := r - 1; i >= 0; i-- {
		sstr[i] = st
		st *= shape[i]
	}
	oshape := make([]int, r)
	ostr := make([]int, r) // src stride of output axis i
	for i, a := range perm {
		oshape[i] = shape[a]
		ostr[i] = sstr[a]
	}
	inner := oshape[r-1]
	innerStride := ostr[r-1]
	outer := len(dst) / inner
	parallelFor(outer, grain(grainElems, inner), func(lo, hi int) {
		idx := make([]int, r-1)
		// decompose lo into the odometer
		rem := lo
		for i := r - 2; i >= 0; i-- {
			idx[i] = rem % oshape[i]
			rem /= oshape[i]
		}
		for o := lo; o < hi; o++ {
			base := 0
			for i := 0; i < r-1; i++ {
				base += idx[i] * ostr[i]
			}
			d := dst[o*inner : (o+1)*inner]
			if innerStride == 1 {
				copy(d, src[base:base+inner])
			} else {
				si := base
				for k := range d {
					d[k] = src[si]
					si += innerStride
				}
			}
			for i := r - 2; i >= 0; i-- {
				idx[i]++
				if idx[i] < oshape[i] {
					break
				}
				idx[i] = 0
			}
		}
	})
}
