package crypto

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseEvent(t *testing.T) {
	t.Parallel()
	kf := "<xml><ToUserName><![CDATA[ww12345678]]></ToUserName><CreateTime>1348831860</CreateTime>" +
		"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>" +
		"<Token><![CDATA[ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR]]></Token>" +
		"<OpenKfId><![CDATA[wkxxxxxxxxxxxxxxxxxx]]></OpenKfId></xml>"
	e, err := ParseEvent([]byte(kf))
	require.NoError(t, err)
	assert.Equal(t, "ww12345678", e.ToUserName)
	assert.EqualValues(t, 1348831860, e.CreateTime)
	assert.Equal(t, "event", e.MsgType)
	assert.Equal(t, EventKfMsgOrEvent, e.Event)
	assert.Equal(t, "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR", e.Token)
	assert.Equal(t, "wkxxxxxxxxxxxxxxxxxx", e.OpenKfID)
	assert.Equal(t, kf, string(e.Raw))

	auth := "<xml><ToUserName>ww1</ToUserName><CreateTime>1</CreateTime><MsgType>event</MsgType>" +
		"<Event>kf_account_auth_change</Event><AuthAddOpenKfId><OpenKfId>wkA</OpenKfId><OpenKfId>wkB</OpenKfId></AuthAddOpenKfId>" +
		"<AuthDelOpenKfId><OpenKfId>wkC</OpenKfId></AuthDelOpenKfId></xml>"
	e, err = ParseEvent([]byte(auth))
	require.NoError(t, err)
	assert.Equal(t, EventKfAccountAuthChange, e.Event)
	assert.Equal(t, []string{"wkA", "wkB"}, e.AuthAddOpenKfID)
	assert.Equal(t, []string{"wkC"}, e.AuthDelOpenKfID)

	// An event this package does not model keeps its XML.
	other := "<xml><MsgType>event</MsgType><Event>something_new</Event><Foo>bar</Foo></xml>"
	e, err = ParseEvent([]byte(other))
	require.NoError(t, err)
	assert.Equal(t, "something_new", e.Event)
	assert.Equal(t, other, string(e.Raw))

	for _, bad := range []string{"", "not xml", "<xml><Event>kf_msg_or_event</Event></xml>", "<other/>",
		"<xml>" + strings.Repeat("a", MaxEventBytes) + "</xml>"} {
		_, err := ParseEvent([]byte(bad))
		assert.ErrorIs(t, err, ErrMalformed, bad[:min(len(bad), 40)])
	}
}

func TestParseEventFastPathScope(t *testing.T) {
	t.Parallel()
	kf := []byte("<xml><ToUserName><![CDATA[ww1]]></ToUserName><CreateTime>1700000000</CreateTime>" +
		"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>" +
		"<Token><![CDATA[tok]]></Token><OpenKfId><![CDATA[wk1]]></OpenKfId></xml>")
	fast, ok := parseFlatEvent(kf)
	require.True(t, ok, "the common callback takes the fast path")
	slow, err := parseEventXML(kf)
	require.NoError(t, err)
	assert.Equal(t, slow, fast)
	for _, doc := range []string{
		"<xml><Event>kf_account_auth_change</Event></xml>",                                               // other events: encoding/xml
		"<xml><Event>kf_msg_or_event</Event><OpenKfId>a&amp;b</OpenKfId></xml>",                          // entities
		"<xml><Event>kf_msg_or_event</Event><!-- <OpenKfId>x</OpenKfId> --><OpenKfId>y</OpenKfId></xml>", // comments
		"<xml><Event>kf_msg_or_event</Event><OpenKfId>a</OpenKfId><OpenKfId>b</OpenKfId></xml>",          // twice
		"<xml><Event>kf_msg_or_event</Event><CreateTime>soon</CreateTime><OpenKfId>a</OpenKfId></xml>",
	} {
		_, ok := parseFlatEvent([]byte(doc))
		assert.False(t, ok, doc)
	}
	e, err := ParseEvent([]byte("<xml><Event>kf_msg_or_event</Event><!-- <OpenKfId>x</OpenKfId> --><OpenKfId>y</OpenKfId></xml>"))
	require.NoError(t, err)
	assert.Equal(t, "y", e.OpenKfID, "comments are ignored, as XML says")
}
