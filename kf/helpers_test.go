package kf_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
)

// fake is a kftest server, a client pointed at it and a log of the calls it received.
type fake struct {
	srv *kftest.Server
	c   *kf.Client

	mu   sync.Mutex
	recs []kftest.Record
}

func newFake(t testing.TB, opts ...kf.ClientOption) *fake {
	t.Helper()
	f := &fake{srv: kftest.NewServer(kftest.WithSeed(1))}
	t.Cleanup(f.srv.Close)
	cancel := f.srv.Observe(func(r kftest.Record) {
		f.mu.Lock()
		f.recs = append(f.recs, r)
		f.mu.Unlock()
	})
	t.Cleanup(cancel)
	opts = append([]kf.ClientOption{kf.WithBaseURL(f.srv.URL()), kf.WithRetry(3, time.Millisecond, 5*time.Millisecond)}, opts...)
	c, err := kf.NewClient(f.srv.CorpID(), f.srv.Secret(), opts...)
	require.NoError(t, err)
	f.c = c
	return f
}

// last returns the last API call to path the fake received. kftest records a call after writing
// its answer, so the record may trail the client by a moment: wait until every call counted by
// the fake is recorded.
func (f *fake) last(t testing.TB, path string) kftest.Record {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		var recs []kftest.Record
		for _, r := range f.recs {
			if r.Kind == kftest.RecordAPI && r.Path == path {
				recs = append(recs, r)
			}
		}
		f.mu.Unlock()
		if n := len(recs); n > 0 && n >= f.srv.Calls(path) {
			return recs[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record of the last call to %s (%d recorded, %d made)", path, len(recs), f.srv.Calls(path))
		}
		time.Sleep(time.Millisecond)
	}
}

// request decodes the JSON body of the last call to path.
func (f *fake) request(t testing.TB, path string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(f.last(t, path).Request, &m))
	return m
}

// testJPEG is a small valid JPEG.
func testJPEG(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range 16 {
		img.Set(i, i, color.RGBA{R: 200, A: 255})
	}
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, nil))
	return buf.Bytes()
}

// testAMR is an AMR-NB file of n 12.2 kbit/s frames (20 ms each).
func testAMR(n int) []byte {
	b := []byte("#!AMR\n")
	for range n {
		frame := make([]byte, 32)
		frame[0] = 7<<3 | 1<<2 // FT 7 (MR122), Q 1
		for i := 1; i < len(frame); i++ {
			frame[i] = byte(i * 7)
		}
		b = append(b, frame...)
	}
	return b
}

// testMP4 is an ISO BMFF file with an ftyp box and a small mdat.
func testMP4() []byte {
	var b bytes.Buffer
	ftyp := []byte("ftypisom\x00\x00\x02\x00isomiso2avc1mp41")
	_ = binary.Write(&b, binary.BigEndian, uint32(4+len(ftyp)))
	b.Write(ftyp)
	mdat := bytes.Repeat([]byte{0x42}, 64)
	_ = binary.Write(&b, binary.BigEndian, uint32(8+len(mdat)))
	b.WriteString("mdat")
	b.Write(mdat)
	return b.Bytes()
}

// logBuffer is a slog handler target that tests can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
