package kf_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/media"
)

// send_msg bodies are {"touser", "open_kfid", "msgid"?, "msgtype": T, T: body} (§6), with
// receive-only fields (menu_id, pic_url) left out.
func TestSendMsgEncoding(t *testing.T) {
	t.Parallel()
	menu := kf.NewMenu("head", []kf.MenuItem{
		kf.MenuClick("101", "yes"),
		kf.MenuView("https://example.com/a", "open"),
		kf.MenuMiniProgram("wxapp", "pages/index", "mini"),
		kf.MenuText("plain", true),
	}, "tail")
	cases := []struct {
		name    string
		content kf.Content
		want    string
	}{
		{"text", kf.NewText("hi"), `"msgtype":"text","text":{"content":"hi"}`},
		{"text value with menu_id", kf.Text{Content: "hi", MenuID: "9"}, `"msgtype":"text","text":{"content":"hi"}`},
		{"image", kf.NewImage("m1"), `"msgtype":"image","image":{"media_id":"m1"}`},
		{"voice", kf.NewVoice("m2"), `"msgtype":"voice","voice":{"media_id":"m2"}`},
		{"video", kf.NewVideo("m3"), `"msgtype":"video","video":{"media_id":"m3"}`},
		{"file", kf.NewFile("m4"), `"msgtype":"file","file":{"media_id":"m4"}`},
		{"link", &kf.Link{Title: "t", Desc: "d", URL: "https://x.y/z", PicURL: "https://pic", ThumbMediaID: "th"},
			`"msgtype":"link","link":{"title":"t","desc":"d","url":"https://x.y/z","thumb_media_id":"th"}`},
		{"miniprogram", kf.NewMiniProgram("wxa", "title", "th", "pages/p"),
			`"msgtype":"miniprogram","miniprogram":{"title":"title","appid":"wxa","pagepath":"pages/p","thumb_media_id":"th"}`},
		{"msgmenu", menu, `"msgtype":"msgmenu","msgmenu":{"head_content":"head","list":[` +
			`{"type":"click","click":{"id":"101","content":"yes"}},` +
			`{"type":"view","view":{"url":"https://example.com/a","content":"open"}},` +
			`{"type":"miniprogram","miniprogram":{"appid":"wxapp","pagepath":"pages/index","content":"mini"}},` +
			`{"type":"text","text":{"content":"plain","no_newline":1}}],"tail_content":"tail"}`},
		{"location", kf.NewLocation("n", "a", 23.1, 113.3), `"msgtype":"location","location":{"latitude":23.1,"longitude":113.3,"name":"n","address":"a"}`},
		{"ca_link", kf.NewCALink("https://work.weixin.qq.com/ca/x"), `"msgtype":"ca_link","ca_link":{"link_url":"https://work.weixin.qq.com/ca/x"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(kf.SendMsgRequest{ToUser: "wm1", OpenKfID: "wk1", MsgID: "id-1", Content: tc.content})
			require.NoError(t, err)
			assert.JSONEq(t, `{"touser":"wm1","open_kfid":"wk1","msgid":"id-1",`+tc.want+`}`, string(b))
		})
	}

	b, err := json.Marshal(kf.SendMsgRequest{ToUser: "wm1", OpenKfID: "wk1", Content: kf.NewText("x")})
	require.NoError(t, err)
	assert.NotContains(t, string(b), "msgid", "no client msgid → no msgid key")

	b, err = json.Marshal(kf.SendMsgOnEventRequest{Code: "CODE", Content: menu})
	require.NoError(t, err)
	assert.Contains(t, string(b), `"code":"CODE"`)
	assert.Contains(t, string(b), `"msgtype":"msgmenu"`)
}

// Everything WeCom would reject is rejected locally, before any I/O, with ErrInvalidArgument.
func TestSendMsgValidation(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "no I/O expected", http.StatusTeapot)
	}))
	defer srv.Close()
	c, err := kf.NewClient("corp", "secret", kf.WithBaseURL(srv.URL))
	require.NoError(t, err)

	tooManyItems := make([]kf.MenuItem, kf.MaxMenuItems+1)
	for i := range tooManyItems {
		tooManyItems[i] = kf.MenuClick("1", "x")
	}
	var nilText *kf.Text
	cases := []struct {
		name string
		req  kf.SendMsgRequest
		msg  string
	}{
		{"no touser", kf.SendMsgRequest{OpenKfID: "wk", Content: kf.NewText("x")}, "touser"},
		{"no open_kfid", kf.SendMsgRequest{ToUser: "wm", Content: kf.NewText("x")}, "open_kfid"},
		{"nil content", kf.SendMsgRequest{ToUser: "wm", OpenKfID: "wk"}, "nil"},
		{"typed nil content", kf.SendMsgRequest{ToUser: "wm", OpenKfID: "wk", Content: nilText}, "nil"},
		{"msgid too long", req(kf.NewText("x"), strings.Repeat("a", 33)), "33 bytes"},
		{"msgid bad char", req(kf.NewText("x"), "a.b"), "only [0-9a-zA-Z_-]"},
		{"empty text", req(kf.NewText(""), ""), "empty"},
		{"text 2049 bytes", req(kf.NewText(strings.Repeat("a", media.MaxTextBytes+1)), ""), "2049 bytes, max 2048"},
		{"text invalid UTF-8", req(kf.NewText("a\xffb"), ""), "UTF-8"},
		{"image without media_id", req(kf.NewImage(""), ""), "media_id"},
		{"voice without media_id", req(kf.NewVoice(""), ""), "media_id"},
		{"video without media_id", req(kf.NewVideo(""), ""), "media_id"},
		{"file without media_id", req(kf.NewFile(""), ""), "media_id"},
		{"link title too long", req(kf.NewLink(strings.Repeat("t", 129), "", "https://a.b", "th"), ""), "link title is 129 bytes"},
		{"link desc too long", req(kf.NewLink("t", strings.Repeat("d", 513), "https://a.b", "th"), ""), "link desc is 513 bytes"},
		{"link url too long", req(kf.NewLink("t", "", "https://a.b/"+strings.Repeat("u", 2048), "th"), ""), "max 2048"},
		{"link url empty", req(kf.NewLink("t", "", "", "th"), ""), "link url is empty"},
		{"link url too long", req(kf.NewLink("t", "", "https://a.b/"+strings.Repeat("p", 2037), "th"), ""), "link url is 2049 bytes, max 2048"},
		{"link no thumb", req(kf.NewLink("t", "", "https://a.b", ""), ""), "thumb_media_id"},
		{"mini title too long", req(kf.NewMiniProgram("wx", strings.Repeat("t", 65), "th", "p"), ""), "65 bytes, max 64"},
		{"mini no appid", req(kf.NewMiniProgram("", "t", "th", "p"), ""), "appid"},
		{"mini no pagepath", req(kf.NewMiniProgram("wx", "t", "th", ""), ""), "pagepath"},
		{"menu 11 items", req(kf.NewMenu("h", tooManyItems, ""), ""), "11 items, max 10"},
		{"menu head too long", req(kf.NewMenu(strings.Repeat("h", 1025), nil, ""), ""), "head_content is 1025 bytes"},
		{"menu tail too long", req(kf.NewMenu("", []kf.MenuItem{kf.MenuClick("1", "x")}, strings.Repeat("t", 1025)), ""), "tail_content is 1025 bytes"},
		{"menu empty", req(kf.NewMenu("", nil, ""), ""), "empty"},
		{"menu item bad type", req(kf.NewMenu("h", []kf.MenuItem{{Type: "button", Click: &kf.MenuClickItem{Content: "x"}}}, ""), ""), "unknown menu item type"},
		{"menu item type mismatch", req(kf.NewMenu("h", []kf.MenuItem{{Type: kf.MenuItemView, Click: &kf.MenuClickItem{Content: "x"}}}, ""), ""), "without view"},
		{"menu item two fields", req(kf.NewMenu("h", []kf.MenuItem{{Type: kf.MenuItemClick, Click: &kf.MenuClickItem{Content: "x"}, Text: &kf.MenuTextItem{Content: "y"}}}, ""), ""), "exactly one"},
		{"menu view without url", req(kf.NewMenu("h", []kf.MenuItem{kf.MenuView("", "x")}, ""), ""), "url is empty"},
		{"menu item bad UTF-8", req(kf.NewMenu("h", []kf.MenuItem{kf.MenuClick("1", "\xff")}, ""), ""), "not valid UTF-8"},
		{"menu mini program without page", req(kf.NewMenu("h", []kf.MenuItem{kf.MenuMiniProgram("wx1", "", "x")}, ""), ""), "appid and pagepath"},
		{"location lat", req(kf.NewLocation("n", "a", 91, 0), ""), "latitude"},
		{"location lon NaN", req(kf.NewLocation("n", "a", 0, math.NaN()), ""), "longitude"},
		{"ca_link empty", req(kf.NewCALink(""), ""), "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.SendMsg(context.Background(), tc.req)
			require.ErrorIs(t, err, kf.ErrInvalidArgument)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}

	// send_msg_on_event takes only text and msgmenu, and needs a code.
	_, err = c.SendMsgOnEvent(context.Background(), kf.SendMsgOnEventRequest{Code: "c", Content: kf.NewImage("m")})
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	_, err = c.SendMsgOnEvent(context.Background(), kf.SendMsgOnEventRequest{Content: kf.NewText("x")})
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	_, err = c.SendMsgOnEvent(context.Background(), kf.SendMsgOnEventRequest{Code: "c", MsgID: "bad id", Content: kf.NewText("x")})
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	assert.Zero(t, calls.Load(), "validation failures must not reach the network")

	// The limits themselves are allowed.
	_, err = json.Marshal(req(kf.NewText(strings.Repeat("字", media.MaxTextBytes/3)), strings.Repeat("a", 32)))
	require.NoError(t, err)
}

func req(c kf.Content, msgID string) kf.SendMsgRequest {
	return kf.SendMsgRequest{ToUser: "wm", OpenKfID: "wk", MsgID: msgID, Content: c}
}
