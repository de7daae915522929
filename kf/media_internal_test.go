package kf

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseContentRange(t *testing.T) {
	t.Parallel()
	for v, want := range map[string][4]int64{ // first, last, size, ok
		"bytes 0-1023/2048":                {0, 1023, 2048, 1},
		"bytes 16777216-33554431/47185920": {16777216, 33554431, 47185920, 1},
		" bytes 5-5/6 ":                    {5, 5, 6, 1},
		"bytes 0-9/*":                      {0, 9, -1, 1},
		"bytes 0-9/9":                      {},
		"bytes 9-0/100":                    {},
		"bytes -1-9/100":                   {},
		"bytes 0-9/-5":                     {},
		"bytes 0-9":                        {},
		"bytes=0-9/10":                     {},
		"items 0-9/10":                     {},
		"bytes 0 -9/10":                    {},
		"bytes +0-9/10":                    {},
		"bytes 0-99999999999999999999/1":   {},
		"":                                 {},
	} {
		first, last, size, ok := parseContentRange(v)
		if want[3] == 0 {
			assert.False(t, ok, v)
			continue
		}
		assert.True(t, ok, v)
		assert.Equal(t, want[:3], []int64{first, last, size}, v)
	}
}

// FuzzParseContentRange: any header value parses without panicking, and an accepted one describes a
// non-empty span inside the file.
func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-1023/2048", "bytes 0-9/*", "bytes 9-0/1", "bytes 1-2/", "bytes -/-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		first, last, size, ok := parseContentRange(v)
		if !ok {
			return
		}
		if first < 0 || last < first || (size != -1 && size <= last) {
			t.Fatalf("%q: accepted %d-%d/%d", v, first, last, size)
		}
	})
}
