package kf

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/media"
)

// Each media reply uploads and sends through the reply record: AMR voice split into ≤ 60 s
// pieces, an image fitted, a video and a file as they are.
func TestReplierMediaThroughTheRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	amr := make([]byte, 0, 6+32*4000)
	amr = append(amr, "#!AMR\n"...)
	for range 4000 { // 80 s: two pieces
		amr = append(amr, 0x3C)
		amr = append(amr, make([]byte, 31)...)
	}
	errs := make(chan error, 4)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		var err error
		switch m.Text.Content {
		case "voice":
			err = r.Voice(ctx, amr)
		case "file":
			err = r.File(ctx, "a.txt", []byte("hello file"))
		}
		errs <- err
		return err
	})
	e.srv.AddText("vera", "voice")
	e.notify()
	require.NoError(t, <-errs)
	sent := e.waitSent("vera", 2)
	for _, s := range sent {
		assert.Equal(t, "voice", s.MsgType)
		data, _, _, ok := e.srv.Media(s.MediaID)
		require.True(t, ok)
		require.NoError(t, media.CheckVoice(data))
	}
	time.Sleep(1300 * time.Millisecond) // the next message in a later second: a fresh quota
	e.srv.AddText("vera", "file")
	e.notify()
	require.NoError(t, <-errs)
	sent = e.waitSent("vera", 3)
	assert.Equal(t, "file", sent[2].MsgType)
}
