package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/gif"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
)

// avatarFile writes a small GIF (not a format WeCom takes: it must be fitted to JPEG/PNG).
func avatarFile(t *testing.T) string {
	t.Helper()
	img := image.NewPaletted(image.Rect(0, 0, 64, 64), []color.Color{color.White, color.RGBA{R: 200, A: 255}})
	for i := range 32 {
		img.SetColorIndex(i, i, 1)
	}
	var b bytes.Buffer
	require.NoError(t, gif.Encode(&b, img, nil))
	path := filepath.Join(t.TempDir(), "avatar.gif")
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o600))
	return path
}

func TestAccounts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	avatar := avatarFile(t)

	r := f.run("accounts", "add", "小智客服", "--avatar", avatar)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	id := strings.Fields(strings.TrimPrefix(r.stdout, "✔ added 小智客服"))[0]
	assert.True(t, strings.HasPrefix(id, "wk"), r.stdout)
	assert.Equal(t, 1, f.srv.Calls("/cgi-bin/media/upload"), "the GIF was fitted and uploaded once")
	assert.Empty(t, f.srv.Sent(), "nothing reaches a customer")

	r = f.run("accounts")
	require.Equal(t, exitOK, r.code)
	assert.Equal(t, "kftest    "+f.srv.OpenKfID()+"\n小智客服  "+id+"\n", r.stdout)

	r = f.run("accounts", "rename", id, "售前咨询")
	require.Equal(t, exitOK, r.code, r.stdout)
	assert.Equal(t, "✔ renamed "+id+" to 售前咨询\n", r.stdout)

	r = f.run("accounts", "avatar", id, avatar)
	require.Equal(t, exitOK, r.code, r.stdout)
	assert.Equal(t, 2, f.srv.Calls("/cgi-bin/media/upload"))

	r = f.run("accounts", "list", "--json")
	require.Equal(t, exitOK, r.code)
	assert.JSONEq(t, `[{"open_kfid":"`+f.srv.OpenKfID()+`","name":"kftest","manage_privilege":true},`+
		`{"open_kfid":"`+id+`","name":"售前咨询","manage_privilege":true}]`, r.stdout)

	r = f.run("accounts", "delete", id, "--yes")
	require.Equal(t, exitOK, r.code, r.stdout)
	r = f.run("accounts")
	assert.NotContains(t, r.stdout, id)

	// Failures are reported plainly, with WeCom's code and the fix.
	r = f.run("accounts", "rename", f.srv.OpenKfID(), "这个名字有十七个字符长长长长长长长长长")
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stdout, "✘ rename "+f.srv.OpenKfID()+": ")
	r = f.run("accounts", "add", "x", "--avatar", filepath.Join(t.TempDir(), "missing.png"))
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stdout, "missing.png: no such file or directory")
	notImage := filepath.Join(t.TempDir(), "notes.txt")
	require.NoError(t, os.WriteFile(notImage, []byte("hello, not an image"), 0o600))
	r = f.run("accounts", "avatar", f.srv.OpenKfID(), notImage)
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stdout, "fix: Use a JPEG, PNG, GIF, WebP, BMP or TIFF image.")
	f.srv.FailWith("/cgi-bin/kf/account/del", 48002, "api forbidden")
	r = f.run("accounts", "delete", f.srv.OpenKfID(), "--yes")
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, flat(r.stdout), "✘ delete "+f.srv.OpenKfID()+": this app may not call the WeChat Customer Service API (48002)")
	f.noSecrets(t, r)
}

func TestSend(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	kfID := f.srv.OpenKfID()
	f.srv.AddText("wmAlice", "你好")

	r := f.run("send", "--to", "wmAlice", "您好，", "有什么可以帮您？")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	assert.Equal(t, "✔ sent to wmAlice from kftest ("+kfID+"): 1 message\n", r.stdout)
	sent := f.srv.SentTo(kfID, "wmAlice")
	require.Len(t, sent, 1)
	assert.Equal(t, "您好， 有什么可以帮您？", sent[0].Text)
	assert.True(t, strings.HasPrefix(sent[0].ClientMsgID, "wxkf-cli-"), "every send carries a client msgid")

	// A long text goes out in parts of at most 2048 bytes; the 5-message rule stops the rest.
	long := strings.Repeat("长", 1500) // 4500 bytes: 3 parts
	r = f.run("send", "--kf", kfID, "--to", "wmAlice", long)
	require.Equal(t, exitOK, r.code, r.stdout)
	assert.Contains(t, r.stdout, ": 3 messages\n")
	r = f.run("send", "--to", "wmAlice", long)
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, flat(r.stdout), "✘ send to wmAlice from kftest: the 5 messages WeCom allows after the customer's last message are used (95001); sent 1, not sent 2")
	assert.Contains(t, flat(r.stdout), "fix: Wait for the customer to write again: each customer message allows 5 more within 48 h.")
	assert.Len(t, f.srv.SentTo(kfID, "wmAlice"), 5)

	// A human servicer has the session: nothing is sent, and the operator is told why.
	f.srv.AddText("wmBob", "转人工")
	f.srv.AddServicer("zhangsan", kftest.ServicerReceiving)
	cl, err := kf.NewClient(f.srv.CorpID(), f.srv.Secret(), kf.WithBaseURL(f.srv.URL()))
	require.NoError(t, err)
	_, err = cl.TransServiceState(context.Background(), kf.TransServiceStateRequest{
		OpenKfID: kfID, ExternalUserID: "wmBob", State: kf.ServiceStateServicer, ServicerUserID: "zhangsan"})
	require.NoError(t, err)
	r = f.run("send", "--to", "wmBob", "hi")
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, flat(r.stdout), "✘ send to wmBob from kftest: a human servicer has the session (state 3); sent 0, not sent 1")
	assert.Contains(t, flat(r.stdout), "fix: The API may not send while a person serves the customer.")
	assert.Empty(t, f.srv.SentTo(kfID, "wmBob"))

	// WeCom's own refusal of an unknown customer is explained too.
	f.srv.FailWith("/cgi-bin/kf/service_state/get", 40096, "invalid external userid")
	r = f.run("send", "--to", "wmNobody", "hi")
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, flat(r.stdout), "✘ send to wmNobody from kftest: WeCom does not know this external_userid (40096)")
	f.noSecrets(t, r)

	// Several accounts: --kf is needed.
	f.srv.AddAccount("另一个")
	r = f.run("send", "--to", "wmAlice", "hi")
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stdout, "✘ this app manages 2 accounts: choose one with --kf\n")
}
