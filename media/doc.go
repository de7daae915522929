// Package media prepares what a WeCom customer-service bot sends so that WeCom accepts it: text cut
// into ≤ 2048-byte messages (SplitText, FitText), images fitted to JPEG/PNG under the upload limit
// (FitImage), the §9 upload rules checked before upload (Check), and voice turned into AMR-NB clips of
// at most 60 s (ToVoice, with an AMREncoder such as the cgo one in package media/amrnb).
//
// The smallest use:
//
//	for _, part := range media.SplitText(reply, media.MaxTextBytes) {
//		// send part as one text message
//	}
//	jpg, format, err := media.FitImage(photo, media.MaxImageBytes) // format is "jpeg" or "png"
//
// Everything here is pure Go and does no I/O, except the optional ffmpeg decoder that ToVoice runs
// for audio formats it cannot read itself. The limits are WeCom's (doc 94677, 96484). AMR voice is
// parsed and split frame-accurately (ParseAMR, SplitAMR); WAV and MP3 are decoded and resampled
// to 8 kHz with a band-limited filter (DecodeWAV, DecodeMP3, Resample).
//
// "doc NNNNN" in comments is an official WeCom page; "§N" refers to section N of docs/wecom-api.md in
// this repository.
package media
