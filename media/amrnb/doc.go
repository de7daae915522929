// Package amrnb encodes and decodes AMR-NB voice with the system's libopencore-amrnb (cgo; Debian
// package libopencore-amrnb-dev, pkg-config opencore-amrnb). It implements media.AMREncoder for
// media.ToVoice and media.AMRDecoder for turning users' voice messages into PCM or WAV.
//
//	enc, _ := amrnb.NewEncoder()
//	pieces, err := media.ToVoice(ctx, mp3Bytes, enc) // AMR-NB pieces ≤ 60 s, ≤ 2 MB (doc 96484)
//
// Only programs that import this package need cgo and the library; package media stays pure Go.
// "§N" in comments refers to section N of docs/wecom-api.md in this repository.
package amrnb
