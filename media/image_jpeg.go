package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// JPEG quality bounds FitImage works within. It uses the best quality in [imageJPEGQualityMin,
// imageJPEGQualityMax] that fits; when even the lowest does not, it lowers the resolution instead of
// the quality, because a smaller sharp photo looks better in a chat than a blocky large one.
const (
	imageJPEGQualityMax = 90
	imageJPEGQualityMin = 70
)

// imageFitMargin is the share of maxBytes an estimate may fill. Estimates come from encoding a
// sample of the image, so they can be a few per cent off; the encode is always checked exactly.
const imageFitMargin = 0.93

// imageStripPixels is about how many pixels one strip holds. Strips are the unit of parallel
// encoding and of sampling; each becomes one JPEG restart interval (2 bytes of marker overhead).
const imageStripPixels = 1 << 16

// imageSampleStride: every imageSampleStride-th strip forms the sample that predicts the size of the
// whole image at a given quality.
const imageSampleStride = 8

// imageJPEGMaxSide is the largest width or height a JPEG can have (16-bit fields in SOF0).
const imageJPEGMaxSide = 1<<16 - 1

// errImageJPEGLayout means the standard library's JPEG writer produced something this package cannot
// splice; it would be a bug here or a change in image/jpeg, never bad input.
var errImageJPEGLayout = errors.New("media: unexpected image/jpeg output layout")

// imageStrips is an image cut into horizontal strips that are JPEG-encoded independently (in
// parallel) and spliced into one baseline JPEG with a restart marker between strips: a restart
// resets the DC predictors, which is exactly where an independent encode starts, so the result
// decodes to the same pixels as encoding the whole image at once (ITU T.81 §B.2.4.4, §F.1.2.3).
type imageStrips struct {
	img     image.Image // *image.RGBA, *image.YCbCr or *image.Gray: the types image/jpeg encodes fast
	rects   []image.Rectangle
	restart int // MCUs per strip, the DRI restart interval
}

func newImageStrips(img image.Image) *imageStrips {
	b := img.Bounds()
	w := b.Dx()
	mcu := 16 // 4:2:0 colour: 16×16 MCUs
	if _, ok := img.(*image.Gray); ok {
		mcu = 8
	}
	mcusPerRow := (w + mcu - 1) / mcu
	rows := max(1, imageStripPixels/max(1, w*mcu)) // MCU rows per strip
	rows = min(rows, 0xffff/mcusPerRow)            // the restart interval is a 16-bit count
	stripH := rows * mcu
	s := &imageStrips{img: img, restart: rows * mcusPerRow}
	for y := b.Min.Y; y < b.Max.Y; y += stripH {
		s.rects = append(s.rects, image.Rect(b.Min.X, y, b.Max.X, min(y+stripH, b.Max.Y)))
	}
	return s
}

// imageEncoded holds strips encoded at one quality.
type imageEncoded struct {
	quality int
	head    []byte   // SOI … DHT of one strip (quality-specific tables), SOF0 height not yet patched
	sos     []byte   // the SOS segment
	data    [][]byte // entropy-coded data per strip; nil where not encoded
}

func (e *imageEncoded) size(idx []int) int {
	n := 0
	for _, i := range idx {
		n += len(e.data[i])
	}
	return n
}

// encode JPEG-encodes the strips idx at quality q in parallel, adding them to enc (created if nil).
func (s *imageStrips) encode(enc *imageEncoded, q int, idx []int) (*imageEncoded, error) {
	if enc == nil {
		enc = &imageEncoded{quality: q, data: make([][]byte, len(s.rects))}
	}
	var todo []int
	for _, i := range idx {
		if enc.data[i] == nil {
			todo = append(todo, i)
		}
	}
	var (
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	workers := min(runtime.GOMAXPROCS(0), len(todo))
	for range workers {
		wg.Go(func() {
			var buf imageFlushBuffer
			for {
				k := int(next.Add(1)) - 1
				if k >= len(todo) {
					return
				}
				i := todo[k]
				head, sos, data, err := s.encodeOne(&buf, i, q)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
				} else {
					enc.data[i] = bytes.Clone(data)
					if enc.head == nil {
						enc.head, enc.sos = bytes.Clone(head), bytes.Clone(sos)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return enc, nil
}

// encodeOne encodes strip i at quality q using buf; the results point into buf.
func (s *imageStrips) encodeOne(buf *imageFlushBuffer, i, q int) (head, sos, data []byte, err error) {
	r := s.rects[i]
	sub := s.img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(r)
	buf.Reset()
	buf.Grow(r.Dx() * r.Dy() / 2)
	if err := jpeg.Encode(buf, sub, &jpeg.Options{Quality: q}); err != nil {
		return nil, nil, nil, err
	}
	return imageSplitJPEG(buf.Bytes())
}

// imageStreamJPEG encodes the strips of an image that is still being decoded, at one quality, each
// as soon as the decoder says its rows are final. It gives up (aborts) once the strips so far make
// clear that the whole will not fit.
type imageStreamJPEG struct {
	s     *imageStrips
	q     int
	limit int
	enc   *imageEncoded
	next  atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	cond  sync.Cond
	ready int // rows final, counted from the top
	ended bool
	abort bool
	err   error
	sum   int // entropy-coded bytes of the strips encoded so far
	rows  int // rows of the strips encoded so far
}

// newImageStreamJPEG starts GOMAXPROCS encoding goroutines; call end to stop and wait for them.
func newImageStreamJPEG(s *imageStrips, q, limit int) *imageStreamJPEG {
	e := &imageStreamJPEG{s: s, q: q, limit: limit, enc: &imageEncoded{quality: q, data: make([][]byte, len(s.rects))}}
	e.cond.L = &e.mu
	for range min(runtime.GOMAXPROCS(0), len(s.rects)) {
		e.wg.Go(e.work)
	}
	return e
}

func (e *imageStreamJPEG) work() {
	var buf imageFlushBuffer
	top := e.s.img.Bounds().Min.Y
	for {
		i := int(e.next.Add(1)) - 1
		if i >= len(e.s.rects) {
			return
		}
		r := e.s.rects[i]
		e.mu.Lock()
		for e.ready < r.Max.Y-top && !e.ended && !e.abort {
			e.cond.Wait()
		}
		stop := e.abort || e.ready < r.Max.Y-top
		e.mu.Unlock()
		if stop {
			return
		}
		head, sos, data, err := e.s.encodeOne(&buf, i, e.q)
		e.mu.Lock()
		switch {
		case err != nil:
			e.err, e.abort = err, true
		default:
			e.enc.data[i] = bytes.Clone(data)
			if e.enc.head == nil {
				e.enc.head, e.enc.sos = bytes.Clone(head), bytes.Clone(sos)
			}
			e.sum += len(data)
			e.rows += r.Dy()
			// Over already, or a quarter in and heading for half as much again: stop guessing.
			total := e.s.img.Bounds().Dy()
			if e.sum > e.limit || (4*e.rows >= total && float64(e.sum)*float64(total) > 1.5*float64(e.limit)*float64(e.rows)) {
				e.abort = true
			}
		}
		if e.abort {
			e.cond.Broadcast()
		}
		e.mu.Unlock()
	}
}

// rowsReady tells the encoders that rows [0, y) of the image (from its top) are final.
func (e *imageStreamJPEG) rowsReady(y int) {
	e.mu.Lock()
	e.ready = y
	e.cond.Broadcast()
	e.mu.Unlock()
}

// stop makes the encoders give up.
func (e *imageStreamJPEG) stop() {
	e.mu.Lock()
	e.abort = true
	e.cond.Broadcast()
	e.mu.Unlock()
}

// end says no more rows will come, waits for the encoders, and returns the encoded strips if every
// strip was encoded (nil otherwise).
func (e *imageStreamJPEG) end() (*imageEncoded, error) {
	e.mu.Lock()
	e.ended = true
	e.cond.Broadcast()
	e.mu.Unlock()
	e.wg.Wait()
	if e.err != nil {
		return nil, e.err
	}
	if e.abort {
		return nil, nil
	}
	for _, d := range e.enc.data {
		if d == nil {
			return nil, nil
		}
	}
	return e.enc, nil
}

// imageFlushBuffer lets image/jpeg write straight into a bytes.Buffer without its own bufio.Writer.
type imageFlushBuffer struct{ bytes.Buffer }

func (*imageFlushBuffer) Flush() error { return nil }

// imageSplitJPEG cuts image/jpeg output (SOI DQT SOF0 DHT SOS data EOI) into the header up to the SOS
// segment, the SOS segment, and the entropy-coded data.
func imageSplitJPEG(b []byte) (head, sos, data []byte, err error) {
	if len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 || b[len(b)-2] != 0xff || b[len(b)-1] != 0xd9 {
		return nil, nil, nil, errImageJPEGLayout
	}
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xff {
			return nil, nil, nil, errImageJPEGLayout
		}
		end := i + 2 + (int(b[i+2])<<8 | int(b[i+3]))
		if end > len(b)-2 {
			return nil, nil, nil, errImageJPEGLayout
		}
		if b[i+1] == 0xda {
			return b[:i], b[i:end], b[end : len(b)-2], nil
		}
		i = end
	}
	return nil, nil, nil, errImageJPEGLayout
}

// total is the exact size of the spliced JPEG once every strip is encoded.
func (s *imageStrips) total(enc *imageEncoded) int {
	n := len(enc.head) + len(enc.sos) + 2 // + EOI
	if len(s.rects) > 1 {
		n += 6 + 2*(len(s.rects)-1) // DRI segment, RSTn markers
	}
	for _, d := range enc.data {
		n += len(d)
	}
	return n
}

// assemble splices fully encoded strips into one JPEG.
func (s *imageStrips) assemble(enc *imageEncoded) ([]byte, error) {
	out := make([]byte, 0, s.total(enc))
	out = append(out, enc.head...)
	// Patch the SOF0 height (the header came from a single strip).
	sof := imageFindSegment(out, 0xc0)
	if sof < 0 || sof+9 > len(out) {
		return nil, errImageJPEGLayout
	}
	h := s.img.Bounds().Dy()
	out[sof+5], out[sof+6] = byte(h>>8), byte(h)
	if len(s.rects) > 1 {
		out = append(out, 0xff, 0xdd, 0, 4, byte(s.restart>>8), byte(s.restart))
	}
	out = append(out, enc.sos...)
	for i, d := range enc.data {
		if i > 0 {
			out = append(out, 0xff, 0xd0+byte((i-1)&7))
		}
		out = append(out, d...)
	}
	return append(out, 0xff, 0xd9), nil
}

// imageFindSegment returns the offset of the first marker segment of type marker in a JPEG header
// made of length-prefixed segments after SOI, or -1.
func imageFindSegment(b []byte, marker byte) int {
	for i := 2; i+4 <= len(b); i += 2 + (int(b[i+2])<<8 | int(b[i+3])) {
		if b[i] != 0xff {
			return -1
		}
		if b[i+1] == marker {
			return i
		}
	}
	return -1
}

// imageJPEGScale is image/jpeg's quantization scale in per cent for a quality (libjpeg's curve).
func imageJPEGScale(q int) float64 {
	if q < 50 {
		return 5000 / float64(q)
	}
	return float64(200 - 2*q)
}

// imageJPEGQualityFor inverts imageJPEGScale, rounding towards lower quality (smaller files).
func imageJPEGQualityFor(scale float64) int {
	const eps = 1e-9 // 5000/(5000/7) is 6.999…: do not lose a step to rounding
	if scale <= 100 {
		return int(math.Floor((200-scale)/2 + eps))
	}
	return int(math.Floor(5000/scale + eps))
}

// imageFitter searches the quality for one image.
type imageFitter struct {
	s       *imageStrips
	sample  []int
	all     []int
	byQ     map[int]*imageEncoded
	maxSize int
	// The estimate of the whole image is factor × (sample bytes) + overhead. Before any full encode
	// factor is the ratio of pixel rows; after one it is calibrated against the exact result.
	factor float64
}

func newImageFitter(s *imageStrips, maxSize int) *imageFitter {
	f := &imageFitter{s: s, byQ: map[int]*imageEncoded{}, maxSize: maxSize}
	stride := imageSampleStride
	if len(s.rects) < 4*imageSampleStride {
		stride = 1 // small image: the sample is the whole image
	}
	sampleRows, allRows := 0, 0
	for i, r := range s.rects {
		f.all = append(f.all, i)
		allRows += r.Dy()
		if i%stride == stride/2 || stride == 1 {
			f.sample = append(f.sample, i)
			sampleRows += r.Dy()
		}
	}
	f.factor = float64(allRows) / float64(sampleRows)
	return f
}

// estimate predicts the whole image's JPEG size at quality q, encoding the sample if needed.
func (f *imageFitter) estimate(q int) (float64, error) {
	enc, err := f.s.encode(f.byQ[q], q, f.sample)
	if err != nil {
		return 0, err
	}
	f.byQ[q] = enc
	overhead := f.s.total(enc) - enc.size(f.all) // headers and markers: exact
	return f.factor*float64(enc.size(f.sample)) + float64(overhead), nil
}

// choose returns the highest quality in [lo, hi] whose estimate fits imageFitMargin × maxSize, or
// lo-1 when none does. It needs few sample encodes: it interpolates log(size) against
// log(quantizer scale), which is close to linear for JPEG, and stops once a fitting quality fills
// 90 % of the target.
func (f *imageFitter) choose(lo, hi int) (int, error) {
	target := imageFitMargin * float64(f.maxSize)
	type point struct {
		q int
		e float64
	}
	var fit, over *point // best fitting (highest q) and lowest known over target
	probe := hi
	for range 6 {
		e, err := f.estimate(probe)
		if err != nil {
			return 0, err
		}
		if e <= target {
			fit = &point{probe, e}
			if probe == hi || e >= 0.9*target {
				return probe, nil
			}
		} else {
			over = &point{probe, e}
			if probe == lo {
				return lo - 1, nil
			}
		}
		lower, upper := lo, hi
		if fit != nil {
			lower = fit.q + 1
		}
		if over != nil {
			upper = over.q - 1
		}
		if lower > upper {
			break
		}
		// Interpolate the quality whose size hits the target; assume size ∝ scale⁻¹ with one point.
		var scale float64
		if fit != nil && over != nil {
			a, b := math.Log(imageJPEGScale(fit.q)), math.Log(imageJPEGScale(over.q))
			t := (math.Log(target) - math.Log(fit.e)) / (math.Log(over.e) - math.Log(fit.e))
			scale = math.Exp(a + t*(b-a))
		} else if over != nil {
			scale = imageJPEGScale(over.q) * over.e / target
		} else {
			scale = imageJPEGScale(fit.q) * fit.e / target
		}
		probe = min(max(imageJPEGQualityFor(scale), lower), upper)
	}
	if fit != nil {
		return fit.q, nil
	}
	return lo - 1, nil
}

// fit encodes the whole image at quality q and reports the exact size; calibrates the estimator.
func (f *imageFitter) fit(q int) (*imageEncoded, int, error) {
	enc, err := f.s.encode(f.byQ[q], q, f.all)
	if err != nil {
		return nil, 0, err
	}
	f.byQ = map[int]*imageEncoded{q: enc} // earlier probes are no longer needed
	total := f.s.total(enc)
	if sz := enc.size(f.sample); sz > 0 {
		f.factor = float64(enc.size(f.all)) / float64(sz)
	}
	return enc, total, nil
}

// imageFitJPEG encodes img (opaque; any image type) as a baseline JPEG of at most maxBytes bytes:
// the highest quality in the allowed range that fits, and the largest scale when even the lowest
// quality does not. See FitImage for the strategy.
func imageFitJPEG(img image.Image, maxBytes int) ([]byte, error) {
	img = imageEncodable(img)
	b := img.Bounds()
	// JPEG cannot store a side over 65535 pixels.
	if b.Dx() > imageJPEGMaxSide || b.Dy() > imageJPEGMaxSide {
		f := float64(imageJPEGMaxSide) / float64(max(b.Dx(), b.Dy()))
		img = imageScale(img, f)
	}
	qHi := imageJPEGQualityMax
	for attempt := 0; attempt < 16; attempt++ {
		s := newImageStrips(img)
		f := newImageFitter(s, maxBytes)
		q, err := f.choose(imageJPEGQualityMin, qHi)
		if err != nil {
			return nil, err
		}
		if q < imageJPEGQualityMin {
			// Even the lowest quality is too big: shrink. Size grows less than linearly with
			// pixels, so aim a little lower than the plain ratio; the sample re-checks the result.
			e, err := f.estimate(imageJPEGQualityMin)
			if err != nil {
				return nil, err
			}
			if img, err = imageShrink(img, 0.9*imageFitMargin*float64(maxBytes)/e); err != nil {
				return nil, err
			}
			qHi = imageJPEGQualityMax
			continue
		}
		enc, total, err := f.fit(q)
		if err != nil {
			return nil, err
		}
		if total <= maxBytes {
			return s.assemble(enc)
		}
		// The sample under-estimated. The estimator is now calibrated on the exact size, so one
		// corrective encode normally fits; if the calibrated choice still misses, shrink.
		q2, err := f.choose(imageJPEGQualityMin, q-1)
		if err != nil {
			return nil, err
		}
		if q2 >= imageJPEGQualityMin {
			enc, total, err = f.fit(q2)
			if err != nil {
				return nil, err
			}
			if total <= maxBytes {
				return s.assemble(enc)
			}
		}
		if img, err = imageShrink(img, 0.85*float64(maxBytes)/float64(total)); err != nil {
			return nil, err
		}
		qHi = imageJPEGQualityMax
	}
	return nil, fmt.Errorf("%w: no JPEG encoding fits in %d bytes", ErrImageCannotFit, maxBytes)
}

// imageShrink scales img so that its pixel count is multiplied by about ratio (< 1).
func imageShrink(img image.Image, ratio float64) (image.Image, error) {
	b := img.Bounds()
	if b.Dx() <= 1 && b.Dy() <= 1 {
		return nil, fmt.Errorf("%w: not even a 1×1 JPEG fits", ErrImageCannotFit)
	}
	f := math.Sqrt(max(min(ratio, 0.95), 1e-6))
	return imageEncodable(imageScale(img, f)), nil
}
