package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	"github.com/rivo/uniseg"
)

// term writes what a person reads: colour only when stdout is a terminal (and NO_COLOR is unset),
// long hints wrapped to short lines.
type term struct {
	stdout, stderr io.Writer
	color          bool
}

func newTerm(stdout, stderr io.Writer) *term {
	return &term{stdout: stdout, stderr: stderr, color: isTerminal(stdout)}
}

// isTerminal reports whether w is a character device that wants colour (https://no-color.org).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

const (
	green  = "32"
	red    = "31"
	yellow = "33"
	dim    = "2"
	bold   = "1"
)

// paint colours s on a terminal.
func (t *term) paint(code, s string) string {
	if !t.color || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (t *term) printf(format string, a ...any) { fmt.Fprintf(t.stdout, format, a...) }

// The marks of a check.
const (
	markOK   = "✔"
	markFail = "✘"
	markSkip = "–"
)

// fail prints a failure the way doctor prints a ✘ line: the summary, then the fix in English
// and Chinese, wrapped under it.
func (t *term) fail(summary string, fix *hint) {
	t.block(t.paint(red, markFail)+" ", "  ", summary)
	t.printFix("  ", fix)
}

// block prints text wrapped under indent, its first line after first (as wide as indent).
func (t *term) block(first, indent, text string) {
	for i, l := range wrap(text, lineWidth-len(indent), false) {
		if i == 0 {
			t.printf("%s%s\n", first, l)
		} else {
			t.printf("%s%s\n", indent, l)
		}
	}
}

// printFix prints a hint's two languages under indent.
func (t *term) printFix(indent string, fix *hint) {
	if fix == nil {
		return
	}
	t.block(indent, indent, "fix: "+fix.EN)
	for _, l := range wrap("修复："+fix.ZH, lineWidth-len(indent), true) {
		t.printf("%s%s\n", indent, l)
	}
}

// lineWidth is the width hints are wrapped to, in terminal columns.
const lineWidth = 78

// noLineStart are characters that must not begin a line (Chinese line-breaking rules).
const noLineStart = "，。、；：？！）」』》”’,.;:?!)]→"

// wrap breaks s into lines of at most width terminal columns (a CJK character takes two). Lines
// break at spaces and, with cjk set (Chinese text), also between two CJK characters, but never
// inside a 「menu name」 and never before closing punctuation. A piece longer than width gets a
// line of its own.
func wrap(s string, width int, cjk bool) []string {
	var lines []string
	var line strings.Builder
	cols := 0
	flush := func() {
		if l := strings.TrimRight(line.String(), " "); l != "" {
			lines = append(lines, l)
		}
		line.Reset()
		cols = 0
	}
	for _, tok := range tokens(s, cjk) {
		if tok == " " {
			if cols > 0 {
				line.WriteString(tok)
				cols++
			}
			continue
		}
		w := uniseg.StringWidth(tok)
		if cols > 0 && cols+w > width && !startsWithNoLineStart(tok) {
			flush()
		}
		line.WriteString(tok)
		cols += w
	}
	flush()
	return lines
}

func startsWithNoLineStart(tok string) bool {
	for _, r := range tok {
		return strings.ContainsRune(noLineStart, r)
	}
	return false
}

// tokens cuts s into the pieces wrap may not break: single spaces, and runs of other characters
// cut (with cjk) between two wide characters and before 「, outside 「」.
func tokens(s string, cjk bool) []string {
	var out []string
	start, depth := -1, 0
	prevWide := false
	for i, r := range s {
		if r == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			out = append(out, " ")
			prevWide = false
			continue
		}
		wide := isWide(r)
		if start >= 0 && cjk && depth == 0 && (wide && prevWide || r == '「') {
			out = append(out, s[start:i])
			start = -1
		}
		if start < 0 {
			start = i
		}
		switch r {
		case '「':
			depth++
		case '」':
			depth = max(depth-1, 0)
		}
		prevWide = wide
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// isWide reports whether r takes two terminal columns (CJK ideographs, kana, fullwidth forms).
func isWide(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana) || uniseg.StringWidth(string(r)) == 2
}
