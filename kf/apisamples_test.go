package kf_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf"
)

// The published bodies: request and response examples of WeCom's kf documentation as copied into
// other SDKs' test fixtures, one directory per endpoint (<endpoint>/*_request.json,
// *_response.json). They are other projects' files and are not committed here; this test runs them
// when the directory exists next to the repository (or where WXKF_APISAMPLES points) and skips
// otherwise.
//
// For every endpoint, each request sample is rebuilt through the public API (send bodies from
// Content) and sent by a Client to a local server, which compares the body it receives with the
// sample; each response sample is served to the Client, and every leaf value of it must survive into
// what the Client returns. sync_msg answers are also decoded into SyncMsgResponse directly: every
// leaf must come back, at its path, when the page is encoded again, and no known msgtype may be left
// only in Raw.

// apiSamplesDir finds the samples: $WXKF_APISAMPLES, else ../shared/testdata/apisamples from the
// module root.
func apiSamplesDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("WXKF_APISAMPLES")
	if dir == "" {
		root, err := filepath.Abs(".")
		require.NoError(t, err)
		for {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(root)
			if parent == root {
				t.Skip("published bodies: no go.mod above the test directory")
			}
			root = parent
		}
		dir = filepath.Join(root, "..", "shared", "testdata", "apisamples")
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Skipf("published bodies: no sample directory at %s (optional external fixtures; set WXKF_APISAMPLES to run them)", dir)
	}
	return dir
}

// sample is a request sample's top-level fields.
type sample map[string]json.RawMessage

func (s sample) str(key string) string {
	var v string
	_ = json.Unmarshal(s[key], &v)
	return v
}

func (s sample) int64(key string) int64 {
	var v int64
	_ = json.Unmarshal(s[key], &v)
	return v
}

// into decodes the whole sample into v (the public request types carry the wire's JSON names).
func (s sample) into(t *testing.T, v any) {
	t.Helper()
	b, err := json.Marshal(map[string]json.RawMessage(s))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}

// endpointDriver calls one endpoint through the Client, building the request from req (nil when the
// endpoint has no request sample: defaults are used), and returns what the Client returned.
type endpointDriver struct {
	path   string
	method string
	call   func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error)
}

func sampleContent(t *testing.T, req sample) kf.Content {
	t.Helper()
	msgtype := req.str("msgtype")
	var c kf.Content
	switch kf.MsgType(msgtype) {
	case kf.MsgTypeText:
		c = new(kf.Text)
	case kf.MsgTypeImage:
		c = new(kf.Image)
	case kf.MsgTypeVoice:
		c = new(kf.Voice)
	case kf.MsgTypeVideo:
		c = new(kf.Video)
	case kf.MsgTypeFile:
		c = new(kf.File)
	case kf.MsgTypeLink:
		c = new(kf.Link)
	case kf.MsgTypeMiniProgram:
		c = new(kf.MiniProgram)
	case kf.MsgTypeMsgMenu:
		c = new(kf.Menu)
	case kf.MsgTypeLocation:
		c = new(kf.Location)
	case kf.MsgTypeCALink:
		c = new(kf.CALink)
	default:
		t.Fatalf("send sample with msgtype %q that no Content type carries", msgtype)
	}
	require.NoError(t, json.Unmarshal(req[msgtype], c))
	return c
}

// sampleIntent reads a knowledge intent sample (add_intent / mod_intent) into a KnowledgeIntent.
func sampleIntent(t *testing.T, req sample) kf.KnowledgeIntent {
	t.Helper()
	type text struct {
		Text struct {
			Content string `json:"content"`
		} `json:"text"`
	}
	var w struct {
		GroupID          string `json:"group_id"`
		IntentID         string `json:"intent_id"`
		Question         *text  `json:"question"`
		SimilarQuestions *struct {
			Items []text `json:"items"`
		} `json:"similar_questions"`
		Answers []struct {
			text
			Attachments []kf.KnowledgeAttachment `json:"attachments"`
		} `json:"answers"`
	}
	req.into(t, &w)
	in := kf.KnowledgeIntent{GroupID: w.GroupID, IntentID: w.IntentID}
	if w.Question != nil {
		in.Question = w.Question.Text.Content
	}
	if w.SimilarQuestions != nil {
		in.SimilarQuestions = []string{}
		for _, q := range w.SimilarQuestions.Items {
			in.SimilarQuestions = append(in.SimilarQuestions, q.Text.Content)
		}
	}
	for _, a := range w.Answers {
		in.Answers = append(in.Answers, kf.KnowledgeAnswer{Text: a.Text.Content, Attachments: a.Attachments})
	}
	return in
}

func orDefault(req sample, key, def string) string {
	if v := req.str(key); v != "" {
		return v
	}
	return def
}

var endpointDrivers = map[string]endpointDriver{
	"account_add": {"/cgi-bin/kf/account/add", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return c.AddAccount(ctx, orDefault(req, "name", "客服"), req.str("media_id"))
	}},
	"account_del": {"/cgi-bin/kf/account/del", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return nil, c.DeleteAccount(ctx, orDefault(req, "open_kfid", "wkTEST"))
	}},
	"account_list": {"/cgi-bin/kf/account/list", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return c.ListAccounts(ctx, int(req.int64("offset")), int(req.int64("limit")))
	}},
	"account_update": {"/cgi-bin/kf/account/update", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		var r kf.UpdateAccountRequest
		req.into(t, &r)
		return nil, c.UpdateAccount(ctx, r)
	}},
	"add_contact_way": {"/cgi-bin/kf/add_contact_way", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return c.AddContactWay(ctx, orDefault(req, "open_kfid", "wkTEST"), req.str("scene"))
	}},
	"cancel_upgrade_service": {"/cgi-bin/kf/customer/cancel_upgrade_service", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return nil, c.CancelUpgradeService(ctx, req.str("open_kfid"), req.str("external_userid"))
	}},
	"customer_batchget": {"/cgi-bin/kf/customer/batchget", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		ids := []string{"wmTEST"}
		if req != nil {
			require.NoError(t, json.Unmarshal(req["external_userid_list"], &ids))
		}
		return c.BatchGetCustomers(ctx, ids, req.int64("need_enter_session_context") == 1)
	}},
	"get_corp_qualification": {"/cgi-bin/kf/get_corp_qualification", http.MethodGet, func(t *testing.T, ctx context.Context, c *kf.Client, _ sample) (any, error) {
		return c.GetCorpQualification(ctx)
	}},
	"get_corp_statistic": {"/cgi-bin/kf/get_corp_statistic", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return c.GetCorpStatistic(ctx, statisticRequest(req))
	}},
	"get_servicer_statistic": {"/cgi-bin/kf/get_servicer_statistic", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return c.GetServicerStatistic(ctx, statisticRequest(req))
	}},
	"get_upgrade_service_config": {"/cgi-bin/kf/customer/get_upgrade_service_config", http.MethodGet, func(t *testing.T, ctx context.Context, c *kf.Client, _ sample) (any, error) {
		return c.GetUpgradeServiceConfig(ctx)
	}},
	"knowledge_add_group": {"/cgi-bin/kf/knowledge/add_group", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return c.AddKnowledgeGroup(ctx, orDefault(req, "name", "分组"))
	}},
	"knowledge_add_intent": {"/cgi-bin/kf/knowledge/add_intent", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		in := kf.KnowledgeIntent{GroupID: "G", Question: "q", Answers: []kf.KnowledgeAnswer{{Text: "a"}}}
		if req != nil {
			in = sampleIntent(t, req)
		}
		return c.AddKnowledgeIntent(ctx, in)
	}},
	"knowledge_del_group": {"/cgi-bin/kf/knowledge/del_group", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return nil, c.DeleteKnowledgeGroup(ctx, req.str("group_id"))
	}},
	"knowledge_del_intent": {"/cgi-bin/kf/knowledge/del_intent", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return nil, c.DeleteKnowledgeIntent(ctx, req.str("intent_id"))
	}},
	"knowledge_list_group": {"/cgi-bin/kf/knowledge/list_group", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		var r kf.KnowledgeListRequest
		req.into(t, &r)
		return c.ListKnowledgeGroups(ctx, r)
	}},
	"knowledge_list_intent": {"/cgi-bin/kf/knowledge/list_intent", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		var r kf.KnowledgeListRequest
		req.into(t, &r)
		return c.ListKnowledgeIntents(ctx, r)
	}},
	"knowledge_mod_group": {"/cgi-bin/kf/knowledge/mod_group", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return nil, c.RenameKnowledgeGroup(ctx, req.str("group_id"), req.str("name"))
	}},
	"knowledge_mod_intent": {"/cgi-bin/kf/knowledge/mod_intent", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return nil, c.UpdateKnowledgeIntent(ctx, sampleIntent(t, req))
	}},
	"send_msg": {"/cgi-bin/kf/send_msg", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		r := kf.SendMsgRequest{ToUser: "wmTEST", OpenKfID: "wkTEST", Content: kf.NewText("hi")}
		if req != nil {
			r = kf.SendMsgRequest{ToUser: req.str("touser"), OpenKfID: req.str("open_kfid"), MsgID: req.str("msgid"), Content: sampleContent(t, req)}
		}
		return c.SendMsg(ctx, r)
	}},
	"send_msg_on_event": {"/cgi-bin/kf/send_msg_on_event", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		r := kf.SendMsgOnEventRequest{Code: "CODE", Content: kf.NewText("hi")}
		if req != nil {
			r = kf.SendMsgOnEventRequest{Code: req.str("code"), MsgID: req.str("msgid"), Content: sampleContent(t, req)}
		}
		return c.SendMsgOnEvent(ctx, r)
	}},
	"service_state_get": {"/cgi-bin/kf/service_state/get", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return c.GetServiceState(ctx, orDefault(req, "open_kfid", "wkTEST"), orDefault(req, "external_userid", "wmTEST"))
	}},
	"service_state_trans": {"/cgi-bin/kf/service_state/trans", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		r := kf.TransServiceStateRequest{OpenKfID: "wkTEST", ExternalUserID: "wmTEST", State: kf.ServiceStateAssistant}
		if req != nil {
			req.into(t, &r)
		}
		return c.TransServiceState(ctx, r)
	}},
	"servicer_add": {"/cgi-bin/kf/servicer/add", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return c.AddServicers(ctx, servicersRequest(t, req))
	}},
	"servicer_del": {"/cgi-bin/kf/servicer/del", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return c.DeleteServicers(ctx, servicersRequest(t, req))
	}},
	"servicer_list": {"/cgi-bin/kf/servicer/list", http.MethodGet, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		return c.ListServicers(ctx, orDefault(req, "open_kfid", "wkTEST"))
	}},
	"sync_msg": {"/cgi-bin/kf/sync_msg", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		r := kf.SyncMsgRequest{OpenKfID: "wkTEST"}
		if req != nil {
			req.into(t, &r)
		}
		return c.SyncMsg(ctx, r)
	}},
	"upgrade_service": {"/cgi-bin/kf/customer/upgrade_service", http.MethodPost, func(t *testing.T, ctx context.Context, c *kf.Client, req sample) (any, error) {
		var r kf.UpgradeServiceRequest
		req.into(t, &r)
		return nil, c.UpgradeService(ctx, r)
	}},
}

func statisticRequest(req sample) kf.StatisticRequest {
	r := kf.StatisticRequest{OpenKfID: orDefault(req, "open_kfid", "wkTEST"), ServicerUserID: req.str("servicer_userid"),
		StartTime: time.Unix(1645545600, 0), EndTime: time.Unix(1645632000, 0)}
	if req != nil {
		r.StartTime, r.EndTime = time.Unix(req.int64("start_time"), 0), time.Unix(req.int64("end_time"), 0)
	}
	return r
}

func servicersRequest(t *testing.T, req sample) kf.ServicersRequest {
	r := kf.ServicersRequest{OpenKfID: "wkTEST", UserIDs: []string{"zhangsan"}}
	if req != nil {
		req.into(t, &r)
	}
	return r
}

// sampleServer is a local WeCom stand-in: gettoken answers a token, the endpoint answers the
// response sample (or a bare success) and records what it received.
type sampleServer struct {
	*httptest.Server
	mu     sync.Mutex
	method string
	body   []byte
}

func newSampleServer(t *testing.T, path string, answer []byte) *sampleServer {
	s := &sampleServer{}
	if answer == nil {
		answer = []byte(`{"errcode":0,"errmsg":"ok"}`)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/cgi-bin/gettoken":
			_, _ = io.WriteString(w, `{"errcode":0,"errmsg":"ok","access_token":"SAMPLE_TOKEN","expires_in":7200}`)
		case path:
			b, _ := io.ReadAll(r.Body)
			s.mu.Lock()
			s.method, s.body = r.Method, b
			s.mu.Unlock()
			_, _ = w.Write(answer)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sampleServer) received() (string, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.method, s.body
}

func TestPublishedBodies(t *testing.T) {
	dir := apiSamplesDir(t)
	t.Logf("published bodies: %d sample files in %s", runSampleDir(t, dir), dir)
}

// The project's own bodies of the same shapes (testdata/wire, values written for this repository)
// run through the same checks on every test run, whether or not the published ones are there.
func TestWireFixtures(t *testing.T) {
	if n := runSampleDir(t, filepath.Join("testdata", "wire")); n == 0 {
		t.Fatal("no fixtures in testdata/wire")
	}
}

// runSampleDir runs every <endpoint>/*request.json and *response.json below dir and returns how many
// sample files it found.
func runSampleDir(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	checked := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		endpoint := e.Name()
		files, err := filepath.Glob(filepath.Join(dir, endpoint, "*.json"))
		require.NoError(t, err)
		var reqs, resps []string
		for _, f := range files {
			switch {
			case strings.HasSuffix(f, "request.json"):
				reqs = append(reqs, f)
			case strings.HasSuffix(f, "response.json"):
				resps = append(resps, f)
			default:
				t.Errorf("%s: neither a request nor a response sample", f)
			}
		}
		checked += len(reqs) + len(resps)
		t.Run(endpoint, func(t *testing.T) {
			t.Parallel()
			d, ok := endpointDrivers[endpoint]
			if !ok {
				t.Fatalf("no driver for the samples of %q: add one", endpoint)
			}
			// Every request sample with the first answer, every answer sample with the first request.
			for i, rq := range reqs {
				rs := ""
				if len(resps) > 0 {
					rs = resps[0]
				}
				runSample(t, d, rq, rs, i == 0)
			}
			for i, rs := range resps {
				if i == 0 && len(reqs) > 0 {
					continue // already run with the first request
				}
				rq := ""
				if len(reqs) > 0 {
					rq = reqs[0]
				}
				runSample(t, d, rq, rs, true)
			}
			if endpoint == "sync_msg" {
				for _, rs := range resps {
					checkSyncPage(t, filepath.Base(rs), readFile(t, rs))
				}
			}
		})
	}
	return checked
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// runSample sends the request sample rq (if any) through the Client against a server answering the
// response sample rs (if any): the body sent must be the sample's, and the answer's leaves must all
// be in what the Client returns (checkAnswer false: the answer was checked in an earlier run).
func runSample(t *testing.T, d endpointDriver, rq, rs string, checkAnswer bool) {
	t.Helper()
	name := filepath.Base(rq) + " → " + filepath.Base(rs)
	var req sample
	var reqBody, answer []byte
	if rq != "" {
		reqBody = readFile(t, rq)
		require.NoError(t, json.Unmarshal(reqBody, &req), rq)
	}
	if rs != "" {
		answer = readFile(t, rs)
	}
	srv := newSampleServer(t, d.path, answer)
	c, err := kf.NewClient("wwSAMPLE", "sample-secret", kf.WithBaseURL(srv.URL), kf.WithRetry(1, 0, 0))
	require.NoError(t, err)
	got, err := d.call(t, context.Background(), c, req)
	if !assertNoError(t, err, name) {
		return
	}
	method, body := srv.received()
	if method != d.method {
		t.Errorf("%s: sent with %s, want %s", name, method, d.method)
	}
	if reqBody != nil {
		compareJSON(t, name+": request body", reqBody, body)
	}
	if answer != nil && checkAnswer {
		checkAnswerLeaves(t, name, answer, got)
	}
}

func assertNoError(t *testing.T, err error, name string) bool {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return false
	}
	return true
}

// checkSyncPage decodes a sync_msg answer sample into SyncMsgResponse: every leaf comes back at its
// path when the page is encoded again, and no message or merged_msg item of a known msgtype, nor an
// event of a known type, is kept only as raw JSON.
func checkSyncPage(t *testing.T, name string, page []byte) {
	t.Helper()
	var resp kf.SyncMsgResponse
	if err := json.Unmarshal(page, &resp); err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	for i, m := range resp.Messages {
		where := name + ": msg_list[" + strconv.Itoa(i) + "] (" + string(m.MsgType) + ")"
		checkTypedBody(t, where, m.MsgType, m.Body)
		if m.MergedMsg != nil {
			for j, it := range m.MergedMsg.Items {
				checkTypedBody(t, where+".item["+strconv.Itoa(j)+"] ("+string(it.MsgType)+")", it.MsgType, it.Body)
			}
		}
	}
	again, err := json.Marshal(resp)
	require.NoError(t, err, name)
	compareJSON(t, name+": decoded and encoded again", page, again)
}

func checkTypedBody(t *testing.T, where string, typ kf.MsgType, b kf.Body) {
	t.Helper()
	if !typ.Known() {
		return
	}
	if b.Raw != nil {
		t.Errorf("%s: a known msgtype left in Raw: %s", where, b.Raw)
	}
	v := reflect.ValueOf(b)
	set := 0
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			set++
		}
	}
	if set != 1 {
		t.Errorf("%s: %d typed bodies set, want 1", where, set)
	}
	if typ == kf.MsgTypeEvent && b.Event != nil && b.Event.EventType.Known() && b.Event.Raw != nil {
		t.Errorf("%s: a known event type %q left in Raw", where, b.Event.EventType)
	}
}

// leaf is one scalar of a JSON document (or an empty array or object) at its path.
type leaf struct{ path, value string }

// jsonLeaves walks a JSON document. Values are written "s:…" (string), "n:…" (number, canonical),
// "b:…", "null", "[]", "{}". Spellings the decoder accepts as aliases are folded into the one it
// encodes: head_img → head_image, shop_head_img → shop_head_image, picurl → pic_url, and a numeric
// sales_price into its string.
func jsonLeaves(t *testing.T, doc []byte) []leaf {
	t.Helper()
	out, err := leavesOf(doc)
	require.NoError(t, err)
	return out
}

func leavesOf(doc []byte) ([]leaf, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var out []leaf
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 {
				out = append(out, leaf{path, "{}"})
			}
			for k, e := range x {
				switch k {
				case "head_img", "shop_head_img":
					k = strings.TrimSuffix(k, "_img") + "_image"
				case "picurl":
					k = "pic_url"
				case "sales_price":
					if n, ok := e.(json.Number); ok {
						e = string(n)
					}
				}
				walk(path+"."+k, e)
			}
		case []any:
			if len(x) == 0 {
				out = append(out, leaf{path, "[]"})
			}
			for i, e := range x {
				walk(path+"["+strconv.Itoa(i)+"]", e)
			}
		case json.Number:
			out = append(out, leaf{path, "n:" + canonicalNumber(string(x))})
		case string:
			out = append(out, leaf{path, "s:" + x})
		case bool:
			out = append(out, leaf{path, "b:" + strconv.FormatBool(x)})
		case nil:
			out = append(out, leaf{path, "null"})
		}
	}
	walk("", v)
	return out, nil
}

func canonicalNumber(s string) string {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return s
}

// isZero reports a value WeCom treats like an absent field.
func isZero(v string) bool {
	switch v {
	case "s:", "n:0", "b:false", "null", "[]", "{}":
		return true
	}
	return false
}

// compareJSON compares two JSON documents leaf by leaf, path by path. A leaf holding a zero value
// ("", 0, false, null, [], {}) may be missing on either side: WeCom reads an absent field as zero.
func compareJSON(t *testing.T, what string, want, got []byte) {
	t.Helper()
	if len(got) == 0 {
		t.Errorf("%s: nothing received", what)
		return
	}
	wl, gl := jsonLeaves(t, want), jsonLeaves(t, got)
	gm := map[string]string{}
	for _, l := range gl {
		gm[l.path] = l.value
	}
	wm := map[string]string{}
	var problems []string
	for _, l := range wl {
		wm[l.path] = l.value
		g, ok := gm[l.path]
		switch {
		case ok && g == l.value:
		case !ok && isZero(l.value):
		case !ok:
			problems = append(problems, "lost "+l.path+" = "+l.value)
		default:
			problems = append(problems, "changed "+l.path+": "+l.value+" → "+g)
		}
	}
	for _, l := range gl {
		if _, ok := wm[l.path]; !ok && !isZero(l.value) {
			problems = append(problems, "added "+l.path+" = "+l.value)
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		t.Errorf("%s:\n  %s\nwant %s\ngot  %s", what, strings.Join(problems, "\n  "), compact(want), compact(got))
	}
}

func compact(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}

// checkAnswerLeaves requires every leaf value of an answer sample (but the top-level errcode and
// errmsg, which the Client turns into errors) to be found in the value the Client returned. Go
// values carry no JSON paths, so leaves are matched by value, each Go value used once: strings and
// numbers as they are, times as unix seconds, and a bool also for WeCom's 0/1 flags.
func checkAnswerLeaves(t *testing.T, name string, answer []byte, got any) {
	t.Helper()
	have := map[string]int{}
	goLeaves(reflect.ValueOf(got), have)
	for _, l := range jsonLeaves(t, answer) {
		if l.path == ".errcode" || l.path == ".errmsg" || l.value == "[]" || l.value == "{}" || l.value == "null" {
			continue
		}
		alts := []string{l.value}
		switch l.value {
		case "n:1":
			alts = append(alts, "b:true")
		case "n:0":
			alts = append(alts, "b:false")
		}
		found := false
		for _, a := range alts {
			if have[a] > 0 {
				have[a]--
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s: the answer's %s = %s is not in what the Client returned: %#v", name, l.path, l.value, got)
		}
	}
}

var timeType = reflect.TypeFor[time.Time]()

// goLeaves counts the scalar values reachable from v, written as jsonLeaves writes them.
func goLeaves(v reflect.Value, out map[string]int) {
	if !v.IsValid() {
		return
	}
	if v.Type() == timeType {
		if t := v.Interface().(time.Time); !t.IsZero() {
			out["n:"+canonicalNumber(strconv.FormatInt(t.Unix(), 10))]++
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			goLeaves(v.Elem(), out)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				goLeaves(v.Field(i), out)
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 { // json.RawMessage: the values inside
			if ls, err := leavesOf(v.Bytes()); err == nil {
				for _, l := range ls {
					out[l.value]++
				}
			}
			return
		}
		for i := range v.Len() {
			goLeaves(v.Index(i), out)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			goLeaves(v.MapIndex(k), out)
		}
	case reflect.String:
		out["s:"+v.String()]++
	case reflect.Bool:
		out["b:"+strconv.FormatBool(v.Bool())]++
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		out["n:"+canonicalNumber(strconv.FormatInt(v.Int(), 10))]++
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		out["n:"+canonicalNumber(strconv.FormatUint(v.Uint(), 10))]++
	case reflect.Float32, reflect.Float64:
		out["n:"+canonicalNumber(strconv.FormatFloat(v.Float(), 'g', -1, 64))]++
	}
}
