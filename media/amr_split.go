package media

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultSplitWindow is how far before each forced cut AMRSplitter looks for a quiet place to cut.
const DefaultSplitWindow = 5 * time.Second

// ErrSplitLimit reports split limits too small to hold a single AMR-NB frame.
var ErrSplitLimit = errors.New("media: AMR split limits too small")

// splitContext is how many frames on each side of a candidate cut count towards its loudness: the cut
// goes into the middle of a pause of at least 2·60 ms rather than next to a single quiet frame.
const splitContext = 3

// AMRSplitter cuts an AMR-NB file into pieces that WeCom accepts as voice messages (at most
// MaxVoiceDuration and MaxVoiceBytes each, doc 96484), at frame boundaries and without re-encoding.
// The zero value applies WeCom's limits.
//
// Where a piece must end, the splitter looks back up to Window for a pause to cut in: SID or NO_DATA
// frames (an encoder with DTX emits them in silence) or, when Decoder is set, frames whose decoded
// audio is at most half as loud as at the limit (mean square over ±60 ms). It takes the latest
// place nearly as quiet as the quietest one. Without a decoder the only loudness proxy is the frame
// type, so a file without SID/NO_DATA frames is cut exactly at the limit.
type AMRSplitter struct {
	// MaxDuration is the longest piece; 0 means MaxVoiceDuration (60 s).
	MaxDuration time.Duration
	// MaxBytes is the largest piece including the "#!AMR\n" header; 0 means MaxVoiceBytes (2 MB).
	MaxBytes int
	// Window is how far before a forced cut to look for a quiet frame; 0 means DefaultSplitWindow,
	// a negative value cuts exactly at the limits. At most half a piece is searched.
	Window time.Duration
	// Decoder, when set, decodes the file to measure the energy of speech frames.
	Decoder AMRDecoder
}

// SplitAMR cuts the AMR-NB file b into pieces of at most maxDur and maxBytes (≤ 0 means WeCom's
// limits: MaxVoiceDuration, MaxVoiceBytes) at frame boundaries, preferring SID/NO_DATA frames within
// DefaultSplitWindow before each forced cut. Every piece is a complete AMR-NB file starting with
// "#!AMR\n"; together their frames are exactly b's. A file without frames yields one header-only
// piece. Errors match ErrNotAMRNB, ErrCorruptAMR or ErrSplitLimit. See AMRSplitter for more control.
func SplitAMR(b []byte, maxDur time.Duration, maxBytes int) ([][]byte, error) {
	return AMRSplitter{MaxDuration: maxDur, MaxBytes: maxBytes}.Split(context.Background(), b)
}

// Split cuts the AMR-NB file b into pieces as described on AMRSplitter. ctx bounds the decoder.
func (s AMRSplitter) Split(ctx context.Context, b []byte) ([][]byte, error) {
	frames, err := scanAMR(b)
	if err != nil {
		return nil, err
	}
	var energy []float64
	if s.Decoder != nil && frames.n() > 0 && s.needsCut(frames) {
		pcm, err := s.Decoder.DecodeAMR(ctx, b)
		if err != nil {
			return nil, fmt.Errorf("media: decoding AMR to find quiet frames: %w", err)
		}
		energy = frameEnergy(pcm, frames.n())
	}
	return s.split(b, frames, energy)
}

// amrFrames holds the layout of an AMR-NB file compactly: frame i spans b[off[i]:off[i+1]].
type amrFrames struct {
	off   []int
	types []AMRFrameType
}

func (f *amrFrames) n() int { return len(f.types) }

// scanAMR checks b is an AMR-NB file and records where its frames are.
func scanAMR(b []byte) (*amrFrames, error) {
	if err := checkAMRMagic(b); err != nil {
		return nil, err
	}
	n, err := walkAMR(b, nil)
	if err != nil {
		return nil, err
	}
	f := &amrFrames{off: make([]int, 0, n+1), types: make([]AMRFrameType, 0, n)}
	_, err = walkAMR(b, func(off int, t AMRFrameType) error {
		f.off = append(f.off, off)
		f.types = append(f.types, t)
		return nil
	})
	f.off = append(f.off, len(b))
	return f, err
}

// limits returns the effective limits in frames and bytes.
func (s AMRSplitter) limits() (maxFrames, maxBytes, window int, err error) {
	maxDur, maxBytes := s.MaxDuration, s.MaxBytes
	if maxDur <= 0 {
		maxDur = MaxVoiceDuration
	}
	if maxBytes <= 0 {
		maxBytes = MaxVoiceBytes
	}
	maxFrames = int(maxDur / AMRFrameDuration)
	if maxFrames < 1 || maxBytes < len(AMRMagic)+AMRMode122.Size() {
		return 0, 0, 0, fmt.Errorf("%w: %v and %d bytes (need ≥ %v and ≥ %d bytes)",
			ErrSplitLimit, maxDur, maxBytes, AMRFrameDuration, len(AMRMagic)+AMRMode122.Size())
	}
	switch {
	case s.Window < 0:
		window = 0
	case s.Window == 0:
		window = int(DefaultSplitWindow / AMRFrameDuration)
	default:
		window = int(s.Window / AMRFrameDuration)
	}
	return maxFrames, maxBytes, window, nil
}

// needsCut reports whether the file is over the limits (errors are left to split).
func (s AMRSplitter) needsCut(f *amrFrames) bool {
	maxFrames, maxBytes, _, err := s.limits()
	return err == nil && (f.n() > maxFrames || len(AMRMagic)+f.off[f.n()]-f.off[0] > maxBytes)
}

// frameEnergy is the mean square of each 160-sample frame of pcm (the last one padded with
// silence), or nil when pcm does not have one frame of samples per AMR frame, so that energy cannot be
// attributed to frames.
func frameEnergy(pcm []int16, frames int) []float64 {
	const per = int(AMRFrameDuration * VoiceSampleRate / time.Second)
	if frames == 0 || len(pcm) <= (frames-1)*per || len(pcm) > frames*per {
		return nil
	}
	e := make([]float64, frames)
	for i := range e {
		var s float64
		for _, v := range pcm[i*per : min(len(pcm), (i+1)*per)] {
			s += float64(v) * float64(v)
		}
		e[i] = s / float64(per)
	}
	return e
}

// split cuts b (laid out as f) into pieces. energy, when not nil, holds the loudness of every frame;
// otherwise SID/NO_DATA frames count as quiet and speech frames as equally loud.
func (s AMRSplitter) split(b []byte, f *amrFrames, energy []float64) ([][]byte, error) {
	cost := make([]float64, f.n())
	for i, t := range f.types {
		switch {
		case t.IsQuiet():
			cost[i] = 0
		case energy != nil:
			cost[i] = energy[i]
		default:
			cost[i] = 1
		}
	}
	cuts, err := s.plan(f.off, cost)
	if err != nil {
		return nil, err
	}
	pieces := make([][]byte, 0, len(cuts)-1)
	for k := range len(cuts) - 1 {
		from, to := f.off[cuts[k]], f.off[cuts[k+1]]
		piece := make([]byte, 0, len(AMRMagic)+to-from)
		pieces = append(pieces, append(append(piece, AMRMagic...), b[from:to]...))
	}
	return pieces, nil
}

// plan chooses where to cut a stream of len(cost) frames, frame i spanning bytes off[i]:off[i+1] and
// as loud as cost[i]. It returns the piece boundaries as frame indices: 0, the cuts, len(cost).
func (s AMRSplitter) plan(off []int, cost []float64) ([]int, error) {
	maxFrames, maxBytes, window, err := s.limits()
	if err != nil {
		return nil, err
	}
	n := len(cost)
	sum := make([]float64, n+1) // prefix sums of cost
	for i, c := range cost {
		sum[i+1] = sum[i] + c
	}
	loud := func(c int) float64 { // mean loudness around a cut before frame c
		lo, hi := max(0, c-splitContext), min(n, c+splitContext)
		return (sum[hi] - sum[lo]) / float64(hi-lo)
	}
	cuts := []int{0}
	for start := 0; start < n || len(cuts) == 1; {
		// The forced end: as many frames as both limits allow.
		end, size := start, len(AMRMagic)
		for end < n && end-start < maxFrames && size+off[end+1]-off[end] <= maxBytes {
			size += off[end+1] - off[end]
			end++
		}
		if end == start && end < n {
			return nil, fmt.Errorf("%w: frame %d (%d bytes) does not fit in %d bytes",
				ErrSplitLimit, end, off[end+1]-off[end], maxBytes)
		}
		cut := end
		if end < n {
			// Move the cut back into a pause when the window has one: a place at most half as loud
			// as the forced cut. Of the places within a tenth of the way from the quietest to the
			// forced cut's loudness, take the latest, for pieces as long as possible. Steady sound
			// (a tone, or speech without pauses) is cut at the limit.
			lo := max(end-window, start+(end-start+1)/2)
			quietest, atEnd := loud(end), loud(end)
			for c := end - 1; c >= lo; c-- {
				quietest = min(quietest, loud(c))
			}
			if quietest < atEnd/2 {
				enough := quietest + (atEnd-quietest)/10
				for cut = end - 1; loud(cut) > enough; cut-- {
				}
			}
		}
		cuts = append(cuts, cut)
		start = cut
	}
	return cuts, nil
}
