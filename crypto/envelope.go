package crypto

import (
	"bytes"
	"unsafe"
)

var (
	xmlOpen  = []byte("<xml>")
	xmlClose = []byte("</xml>")
	cdataBeg = []byte("<![CDATA[")
	cdataEnd = []byte("]]>")
)

// envelopeField returns the text of the single element <name>…</name> of an <xml> envelope,
// unwrapping CDATA and trimming surrounding white space. It is a strict scanner, not an XML
// parser: the envelope WeCom posts is flat and its values are base64 or ids, so anything else
// (two such elements, markup or entities in a plain value, no <xml> root) is rejected.
// The result aliases body.
func envelopeField(body []byte, name string) ([]byte, bool) {
	b := bytes.TrimSpace(body)
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	if bytes.HasPrefix(b, []byte("<?xml")) {
		end := bytes.Index(b, []byte("?>"))
		if end < 0 {
			return nil, false
		}
		b = bytes.TrimSpace(b[end+2:])
	}
	if !bytes.HasPrefix(b, xmlOpen) || !bytes.HasSuffix(b, xmlClose) {
		return nil, false
	}
	b = b[len(xmlOpen) : len(b)-len(xmlClose)]

	var open, close [64]byte
	if len(name)+3 > len(open) {
		return nil, false
	}
	o := append(append(append(open[:0], '<'), name...), '>')
	c := append(append(append(close[:0], "</"...), name...), '>')
	i := bytes.Index(b, o)
	if i < 0 || bytes.Index(b[i+len(o):], o) >= 0 {
		return nil, false
	}
	rest := b[i+len(o):]
	j := bytes.Index(rest, c)
	if j < 0 {
		return nil, false
	}
	v := bytes.TrimSpace(rest[:j])
	if bytes.HasPrefix(v, cdataBeg) {
		if !bytes.HasSuffix(v, cdataEnd) || len(v) < len(cdataBeg)+len(cdataEnd) {
			return nil, false
		}
		v = v[len(cdataBeg) : len(v)-len(cdataEnd)]
		if bytes.Contains(v, cdataEnd) {
			return nil, false
		}
		return v, true
	}
	if bytes.ContainsAny(v, "<>&") {
		return nil, false
	}
	return v, true
}

// bytesToString views b as a string without copying; b must not change while the string is used.
func bytesToString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
