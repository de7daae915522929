package media

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"

	"github.com/rivo/uniseg"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	textFamily   = "👨\u200d👩\u200d👧\u200d👦" // one grapheme cluster of 25 bytes
	textThumbsUp = "👍🏽"                     // thumbs up + skin tone: one cluster of 8 bytes
	textFlagCN   = "🇨🇳"
	textFlagUS   = "🇺🇸"
)

func TestSplitText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    string
		max  int
		want []string
	}{
		{"empty is nothing to send", "", 10, nil},
		{"fits in one part", "hello", 5, []string{"hello"}},
		{"blank line beats a later line break",
			"aaaa\n\nbbbb\ncc", 12, []string{"aaaa\n\n", "bbbb\ncc"}},
		{"blank line beats a later space",
			"aaaa\n\nbbbb cccc", 10, []string{"aaaa\n\n", "bbbb cccc"}},
		{"CR LF blank line",
			"aaa\r\n\r\nbb cc", 9, []string{"aaa\r\n\r\n", "bb cc"}},
		{"blank line too early is skipped for a fuller part",
			"a\n\nbbbbbb\ncccc", 12, []string{"a\n\nbbbbbb\n", "cccc"}},
		{"line break beats a later sentence end",
			"one two\nthree. four", 16, []string{"one two\n", "three. four"}},
		{"sentence end keeps its trailing space",
			"Hello world. How are you? Fine", 20, []string{"Hello world. ", "How are you? Fine"}},
		{"ASCII sentence end needs white space after it",
			"Pi is 3.14159 ok and more", 12, []string{"Pi is ", "3.14159 ok ", "and more"}},
		{"ASCII sentence end with closing quote",
			`He said "Stop." Then left`, 20, []string{`He said "Stop." `, "Then left"}},
		{"ASCII sentence end before a line break just past the window",
			"aaaa bbbb.\ncc", 10, []string{"aaaa bbbb.", "\ncc"}},
		{"CJK sentence end needs no space",
			"今天天气很好！我们走吧", 24, []string{"今天天气很好！", "我们走吧"}},
		{"CJK sentence end with closing quote",
			"他说：“好。”我们走", 24, []string{"他说：“好。”", "我们走"}},
		{"CJK question mark and full stop",
			"你好吗？我很好。谢谢你呀", 13, []string{"你好吗？", "我很好。", "谢谢你呀"}},
		{"space when there is no sentence end",
			"alpha beta gamma delta", 12, []string{"alpha beta ", "gamma delta"}},
		{"anywhere as a last resort", "abcdefghijklmnop", 5, []string{"abcde", "fghij", "klmno", "p"}},
		{"CJK anywhere on rune boundaries", "一二三四五六七", 8, []string{"一二", "三四", "五六", "七"}},
		{"never inside a ZWJ emoji sequence",
			"ab" + textFamily + "cd", 26, []string{"ab", textFamily + "c", "d"}},
		{"a ZWJ sequence longer than the limit is cut between runes",
			"ab" + textFamily + "cd", 20,
			[]string{"ab", "👨\u200d👩\u200d👧", "\u200d👦cd"}},
		{"never between an emoji and its skin tone", "x" + textThumbsUp, 8, []string{"x", textThumbsUp}},
		{"never between the two halves of a flag",
			textFlagCN + textFlagUS, 12, []string{textFlagCN, textFlagUS}},
		{"never between a letter and its combining accent",
			"cafe\u0301s", 5, []string{"caf", "e\u0301s"}},
		{"never between CR and LF", "abc\r\nd", 4, []string{"abc", "\r\nd"}},
		{"no-break space is not a cut point",
			"aaaa\u00a0bbbbb", 8, []string{"aaaa\u00a0bb", "bbb"}},
		{"invalid UTF-8 becomes U+FFFD", "ab\xffcd", 4, []string{"ab", "\uFFFDc", "d"}},
		{"limit below 4 is raised to 4", "abcdefgh", 0, []string{"abcd", "efgh"}},
		{"limit 1 still keeps whole runes", "你好", 1, []string{"你", "好"}},
		{"negative limit", "你好", -5, []string{"你", "好"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := SplitText(tt.s, tt.max)
			assert.Equal(t, tt.want, got)
			requireSplitInvariants(t, tt.s, tt.max, got)
		})
	}
}

func TestSplitTextWeComLimit(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "第%d段：", i)
		for range 6 {
			b.WriteString("一段文字，含有表情👍🏽和国旗🇨🇳。The quick brown fox jumps over the lazy dog.\n")
		}
		b.WriteString("\n")
	}
	s := b.String()
	require.Greater(t, len(s), 20*MaxTextBytes)
	parts := SplitText(s, MaxTextBytes)
	requireSplitInvariants(t, s, MaxTextBytes, parts)
	for i, p := range parts[:len(parts)-1] {
		// Paragraphs are ~600 bytes, so every part can and must end at a blank line.
		assert.True(t, strings.HasSuffix(p, "\n\n"), "part %d ends with %q", i, p[max(0, len(p)-10):])
		assert.Greater(t, len(p), MaxTextBytes-700, "part %d", i)
	}
}

func TestSplitTextDoesNotCopy(t *testing.T) {
	t.Parallel()
	s := strings.Repeat("abc def. ", 1000)
	parts := SplitText(s, 100)
	offset := 0
	for _, p := range parts {
		// Each part is a substring of s: same backing memory, no copies.
		require.Equal(t, unsafe.StringData(s[offset:]), unsafe.StringData(p))
		offset += len(p)
	}
}

func TestFitText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		s             string
		max, parts    int
		marker        string
		want          []string
		wantTruncated bool
	}{
		{"empty", "", 10, 5, "", nil, false},
		{"fits in the quota: same as SplitText",
			"alpha beta gamma delta epsilon", 12, 3, "", []string{"alpha beta ", "gamma delta ", "epsilon"}, false},
		{"one part short: last part truncated with the default marker",
			"alpha beta gamma delta epsilon", 12, 2, "", []string{"alpha beta ", "gamma…"}, true},
		{"custom marker",
			"alpha beta gamma delta epsilon", 12, 1, "...", []string{"alpha..."}, true},
		{"marker after a sentence end",
			"你好吗？我很好。谢谢你呀", 27, 1, "", []string{"你好吗？我很好。…"}, true},
		{"marker longer than a part: cut without it",
			"abcdefghijkl", 8, 1, "[truncated]", []string{"abcdefgh"}, true},
		{"marker exactly a part: marker alone",
			"abcdefghijkl", 5, 1, "[cut]", []string{"[cut]"}, true},
		{"no room for a rune beside the marker: marker alone",
			"你好世界", 4, 1, "", []string{"…"}, true},
		{"zero parts", "hello", 10, 0, "", nil, true},
		{"negative parts", "hello", 10, -1, "", nil, true},
		{"huge quota", "hello world", 6, math.MaxInt, "", []string{"hello ", "world"}, false},
		{"never truncates inside a cluster",
			"ab" + textThumbsUp + "cd", 11, 1, "", []string{"ab…"}, true},
		{"invalid UTF-8 in the marker",
			"abcdefghij", 6, 1, "\xff", []string{"abc\uFFFD"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, truncated := FitText(tt.s, tt.max, tt.parts, tt.marker)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantTruncated, truncated)
			requireFitInvariants(t, tt.s, tt.max, tt.parts, tt.marker, got, truncated)
		})
	}
}

func TestFitTextQuotaOfFive(t *testing.T) {
	t.Parallel()
	s := strings.Repeat("这是一句很长的话。", 2000) // 54 000 bytes
	parts, truncated := FitText(s, MaxTextBytes, 5, "")
	require.True(t, truncated)
	require.Len(t, parts, 5)
	requireFitInvariants(t, s, MaxTextBytes, 5, "", parts, truncated)
	assert.Equal(t, SplitText(s, MaxTextBytes)[:4], parts[:4])
	assert.True(t, strings.HasSuffix(parts[4], "。…"), "the last part ends at a sentence, then the marker")
}

func FuzzSplitText(f *testing.F) {
	for _, seed := range []string{"", "a", "hello world. foo\n\nbar", textFamily + textFlagCN + textFlagUS,
		"cafe\u0301\r\n\r\n。！？", "\xff\xfe\x80", strings.Repeat("e\u0301", 40)} {
		f.Add(seed, 4)
		f.Add(seed, 7)
	}
	f.Fuzz(func(t *testing.T, s string, maxBytes int) {
		maxBytes %= 4096 // big limits only take longer; negative ones test the clamp
		requireSplitInvariants(t, s, maxBytes, SplitText(s, maxBytes))
	})
}

func FuzzFitText(f *testing.F) {
	f.Add("hello world. foo\n\nbar", 8, 2, "")
	f.Add(textFamily+textFlagCN, 6, 1, "...")
	f.Add("你好世界", 4, 1, "")
	f.Add("abc", 5, 0, "\xff")
	f.Fuzz(func(t *testing.T, s string, maxBytes, maxParts int, marker string) {
		maxBytes %= 4096
		maxParts %= 64
		parts, truncated := FitText(s, maxBytes, maxParts, marker)
		requireFitInvariants(t, s, maxBytes, maxParts, marker, parts, truncated)
	})
}

// requireSplitInvariants checks everything SplitText promises about parts = SplitText(s, maxBytes).
func requireSplitInvariants(t testing.TB, s string, maxBytes int, parts []string) {
	t.Helper()
	clean := strings.ToValidUTF8(s, "\uFFFD")
	limit := max(maxBytes, MinTextSplitBytes)
	if clean == "" {
		require.Nil(t, parts)
		return
	}
	require.Equal(t, clean, strings.Join(parts, ""), "parts must join to the input")
	clusters := textClusters(clean)
	offset := 0
	for i, p := range parts { // plain ifs: testify per part is too slow for fuzzing
		if p == "" || len(p) > limit || !utf8.ValidString(p) {
			t.Fatalf("part %d of %d is empty, over %d bytes or invalid UTF-8: %q", i, len(parts), limit, p)
		}
		offset += len(p)
		if i == len(parts)-1 {
			break
		}
		// A cut inside a grapheme cluster only when that cluster alone is over the limit.
		if c, inside := clusterAround(clusters, offset); inside && c[1]-c[0] <= limit {
			t.Fatalf("part %d ends inside cluster %q that fits in %d bytes", i, clean[c[0]:c[1]], limit)
		}
		// No part is needlessly short: it is at least half full, or the next cluster did not fit.
		// (A window of limit+UTFMax bytes decides every cluster that could end within limit.)
		next, _, _, _ := uniseg.FirstGraphemeClusterInString(clean[offset:min(len(clean), offset+limit+utf8.UTFMax)], -1)
		if len(p) < limit/2 && len(p)+len(next) <= limit {
			t.Fatalf("part %d (%q) is short although %q fit", i, p, next)
		}
	}
}

// requireFitInvariants checks everything FitText promises.
func requireFitInvariants(t testing.TB, s string, maxBytes, maxParts int, marker string, parts []string, truncated bool) {
	t.Helper()
	clean := strings.ToValidUTF8(s, "\uFFFD")
	if maxParts <= 0 || clean == "" {
		require.Nil(t, parts)
		require.Equal(t, clean != "", truncated)
		return
	}
	limit := max(maxBytes, MinTextSplitBytes)
	split := SplitText(s, maxBytes)
	if !truncated {
		require.Equal(t, split, parts, "not truncated: must equal SplitText")
		require.LessOrEqual(t, len(parts), maxParts)
		return
	}
	require.Greater(t, len(split), maxParts, "truncated although SplitText fits the quota")
	require.Len(t, parts, maxParts)
	require.Equal(t, split[:maxParts-1], parts[:maxParts-1])
	if marker == "" {
		marker = DefaultTruncationMarker
	}
	marker = strings.ToValidUTF8(marker, "\uFFFD")
	last := parts[len(parts)-1]
	for i, p := range parts {
		require.LessOrEqual(t, len(p), limit, "part %d", i)
		require.True(t, utf8.ValidString(p), "part %d", i)
	}
	if len(marker) <= limit {
		require.True(t, strings.HasSuffix(last, marker), "last part %q lacks marker %q", last, marker)
		last = strings.TrimSuffix(last, marker)
	} else {
		require.NotEmpty(t, last)
	}
	require.True(t, strings.HasPrefix(clean, strings.Join(parts[:len(parts)-1], "")+last),
		"parts without the marker must be a prefix of the input")
}

// textClusters returns the [start, end) byte ranges of the grapheme clusters of s.
func textClusters(s string) [][2]int {
	var out [][2]int
	state, pos := -1, 0
	for rest := s; rest != ""; {
		var c string
		c, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		out = append(out, [2]int{pos, pos + len(c)})
		pos += len(c)
	}
	return out
}

// clusterAround returns the cluster containing offset and whether offset lies strictly inside it.
func clusterAround(clusters [][2]int, offset int) ([2]int, bool) {
	lo, hi := 0, len(clusters)
	for lo < hi {
		mid := (lo + hi) / 2
		if clusters[mid][1] <= offset {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(clusters) {
		return [2]int{}, false
	}
	c := clusters[lo]
	return c, c[0] < offset && offset < c[1]
}

func BenchmarkSplitText(b *testing.B) {
	cases := []struct {
		name string
		s    string
	}{
		{"prose", strings.Repeat("一段文字，含有表情👍🏽和国旗🇨🇳。The quick brown fox jumps over the lazy dog.\n", 2000)},
		// One grapheme cluster of 1 MB: must stay linear, not rescan the cluster for every part.
		{"huge-cluster", "e" + strings.Repeat("\u0301", 1<<19)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.s)))
			for b.Loop() {
				SplitText(c.s, MaxTextBytes)
			}
		})
	}
}
