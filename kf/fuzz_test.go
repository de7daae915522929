package kf_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/wxkf/wxkf/kf"
)

// seedMessages adds every message of the all-types page, and some odd shapes, to a fuzz corpus.
func seedMessages(f *testing.F) {
	var page struct {
		MsgList []json.RawMessage `json:"msg_list"`
	}
	if err := json.Unmarshal(loadAllTypesPage(f), &page); err != nil {
		f.Fatal(err)
	}
	for _, m := range page.MsgList {
		f.Add([]byte(m))
	}
	for _, s := range []string{
		`{}`, `null`, `[]`, `1`, `"x"`, `{"msgtype":"event"}`, `{"msgtype":"event","event":null}`,
		`{"msgtype":"event","event":[1]}`, `{"msgtype":"text","text":null}`, `{"msgtype":"","":{}}`,
		`{"msgtype":"merged_msg","merged_msg":{"item":[{"msgtype":"text","msg_content":"{\"text\":{\"content\":1}}"}]}}`,
		`{"msgtype":"merged_msg","merged_msg":{"item":[{"msgtype":"event","msg_content":"{\"event_type\":\"x\"}"}]}}`,
		`{"send_time":-62135596800,"msgtype":"text","text":{"content":"a"}}`,
		`{"send_time":9223372036854775807,"origin":"3","msgtype":"text","TEXT":{"content":"a"}}`,
		`{"msgtype":"location","location":{"latitude":1e308,"longitude":-1e308}}`,
		`{"msgtype":"channels_shop_product","channels_shop_product":{"head_img":"h","sales_price":0,"shop_head_img":"s"}}`,
		`{"msgtype":"channels_shop_product","channels_shop_product":{"sales_price":true}}`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzMessageUnmarshal: decoding any input never panics; a decoded message marshals, and
// marshalling is a fixpoint after one round trip (decode(encode(m)) encodes to the same bytes).
func FuzzMessageUnmarshal(f *testing.F) {
	seedMessages(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var m kf.Message
		if err := m.UnmarshalJSON(data); err != nil {
			return
		}
		b1, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("decoded message does not marshal: %v\ninput: %q", err, data)
		}
		var m2 kf.Message
		if err := json.Unmarshal(b1, &m2); err != nil {
			t.Fatalf("re-decoding failed: %v\n%s", err, b1)
		}
		b2, err := json.Marshal(m2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("not a fixpoint:\n%s\n%s\ninput: %q", b1, b2, data)
		}
		if m.Raw != nil && !json.Valid(m.Raw) {
			t.Fatalf("Raw is not JSON: %q", m.Raw)
		}
	})
}

// FuzzMergedMsgItem: a merged_msg item with any msgtype and msg_content string never panics or
// fails, and its Raw is always valid JSON.
func FuzzMergedMsgItem(f *testing.F) {
	f.Add("text", `{"text":{"content":"hi"}}`, int64(1615478500))
	f.Add("image", `{"media_id":"m"}`, int64(0))
	f.Add("meeting", `{"meeting":{"id":1}}`, int64(-1))
	f.Add("text", `not json`, int64(1))
	f.Add("event", `{"event_type":"enter_session","scene":5}`, int64(1))
	f.Add("text", `{"text":"plain"}`, int64(1))
	f.Add("", `{"":{}}`, int64(1))
	f.Fuzz(func(t *testing.T, msgType, content string, sendTime int64) {
		in, err := json.Marshal(map[string]any{"send_time": sendTime, "msgtype": msgType, "sender_name": "s", "msg_content": content})
		if err != nil {
			return
		}
		var it kf.MergedMsgItem
		if err := json.Unmarshal(in, &it); err != nil {
			t.Fatalf("a well-formed item failed: %v\n%s", err, in)
		}
		if it.Raw != nil && !json.Valid(it.Raw) {
			t.Fatalf("Raw is not JSON: %q", it.Raw)
		}
		b, err := json.Marshal(it)
		if err != nil {
			t.Fatalf("item does not marshal: %v", err)
		}
		var again kf.MergedMsgItem
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatal(err)
		}
		if again.MsgContent != it.MsgContent && it.MsgContent != "" {
			t.Fatalf("msg_content changed: %q → %q", it.MsgContent, again.MsgContent)
		}
		// Inside a message, an item never fails the message either.
		msg, _ := json.Marshal(map[string]any{"msgid": "m", "msgtype": "merged_msg",
			"merged_msg": map[string]any{"title": "t", "item": []json.RawMessage{in}}})
		var m kf.Message
		if err := json.Unmarshal(msg, &m); err != nil || m.MergedMsg == nil || len(m.MergedMsg.Items) != 1 {
			t.Fatalf("message with this item failed: %v %+v", err, m)
		}
	})
}

// FuzzSyncMsgPage: a page never panics; when it decodes, every message is the same as decoding
// that message alone (fast path and repair path agree).
func FuzzSyncMsgPage(f *testing.F) {
	f.Add(loadAllTypesPage(f))
	f.Add([]byte(`{"errcode":0,"has_more":1,"next_cursor":"c","msg_list":[{"msgid":"a","msgtype":"text","text":{"content":"x"}},{"msgtype":"x","x":1}]}`))
	f.Add([]byte(`{"errcode":0,"msg_list":[1,"a",null,{}]}`))
	f.Add([]byte(`{"errcode":-1,"errmsg":"busy"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var page kf.SyncMsgResponse
		if err := json.Unmarshal(data, &page); err != nil {
			return
		}
		var raw struct {
			MsgList []json.RawMessage `json:"msg_list"`
		}
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Fatalf("page decoded but its list does not: %v", err)
		}
		if len(raw.MsgList) != len(page.Messages) {
			t.Fatalf("%d raw messages, %d decoded", len(raw.MsgList), len(page.Messages))
		}
		for i, r := range raw.MsgList {
			var one kf.Message
			if err := one.UnmarshalJSON(r); err != nil {
				continue // kept as Raw by the page
			}
			a, _ := json.Marshal(one)
			b, _ := json.Marshal(page.Messages[i])
			if !bytes.Equal(a, b) {
				t.Fatalf("message %d: page decode differs from single decode:\n%s\n%s", i, b, a)
			}
		}
		if _, err := json.Marshal(page); err != nil {
			t.Fatalf("page does not marshal: %v", err)
		}
	})
}

// FuzzChannelsShopProduct: a channels_shop_product body of any shape decodes without panicking; what
// decodes encodes, and decoding that encoding gives the same product (both spellings and both price
// types collapse into one form).
func FuzzChannelsShopProduct(f *testing.F) {
	for _, s := range []string{
		`{"product_id":"P","head_image":"h","title":"t","sales_price":"100","shop_nickname":"n","shop_head_image":"s"}`,
		`{"product_id":"P","head_img":"h","sales_price":0,"shop_head_img":"s"}`,
		`{"sales_price":1e400}`, `{"sales_price":-0.5}`, `{"sales_price":null}`, `{"sales_price":[1]}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p kf.ChannelsShopProduct
		if json.Unmarshal(data, &p) != nil {
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("decoded product does not marshal: %v", err)
		}
		var p2 kf.ChannelsShopProduct
		if err := json.Unmarshal(b, &p2); err != nil || p2 != p {
			t.Fatalf("round trip changed the product: %v\n%+v\n%+v", err, p, p2)
		}
	})
}

// FuzzKnowledgeAttachment: a list_intent attachment of any shape decodes without panicking, and what
// decodes survives a round trip (pic_url and picurl collapse into pic_url).
func FuzzKnowledgeAttachment(f *testing.F) {
	for _, s := range []string{
		`{"msgtype":"image","image":{"name":"a.jpg"}}`,
		`{"msgtype":"link","link":{"title":"t","picurl":"p","desc":"d","url":"u"}}`,
		`{"msgtype":"link","link":{"title":"t","pic_url":"p","picurl":"q"}}`,
		`{"msgtype":"miniprogram","miniprogram":{"title":"t","appid":"a","pagepath":"/"}}`,
		`{"msgtype":"link","link":[]}`, `{"link":null}`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a kf.KnowledgeAttachment
		if json.Unmarshal(data, &a) != nil {
			return
		}
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("decoded attachment does not marshal: %v", err)
		}
		var a2 kf.KnowledgeAttachment
		if err := json.Unmarshal(b, &a2); err != nil {
			t.Fatal(err)
		}
		b2, _ := json.Marshal(a2)
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the attachment:\n%s\n%s", b, b2)
		}
	})
}
