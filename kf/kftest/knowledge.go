package kftest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// The knowledge base of the smart assistant (§8, doc 95971 / 95972): groups and intents with text
// answers and image, video, link and mini program attachments. The fake validates required fields
// (its error codes for them are approximations) and pages lists with an opaque cursor; it enforces no
// field limits, since no official page states them. list_intent answers attachments as WeCom does:
// images and videos by file name only.

// MaxKnowledgeListLimit is the largest limit list_group / list_intent accept (default 100).
const MaxKnowledgeListLimit = 1000

type kGroup struct {
	id, name  string
	isDefault bool
}

type kIntent struct {
	id, groupID string
	question    json.RawMessage
	similar     json.RawMessage
	answers     json.RawMessage
}

type knowledgeBase struct {
	groups  []*kGroup
	intents []*kIntent
}

func (k *knowledgeBase) init(s *Server) {
	k.groups = []*kGroup{{id: s.randString(24, alnum), name: "默认分组", isDefault: true}}
}

func (k *knowledgeBase) group(id string) *kGroup {
	for _, g := range k.groups {
		if g.id == id {
			return g
		}
	}
	return nil
}

func (k *knowledgeBase) intent(id string) *kIntent {
	for _, it := range k.intents {
		if it.id == id {
			return it
		}
	}
	return nil
}

type kGroupReq struct {
	GroupID string `json:"group_id"`
	Name    string `json:"name"`
}

type kGroupAddResp struct {
	okBody
	GroupID string `json:"group_id"`
}

// handleKnowledgeAddGroup is POST kf/knowledge/add_group {name} → {group_id}; names are unique.
func (s *Server) handleKnowledgeAddGroup(c *call) result {
	var req kGroupReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	if req.Name == "" {
		return fail(CodeInvalidParameter, "invalid parameter: name missing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.ContainsFunc(s.knowledge.groups, func(g *kGroup) bool { return g.name == req.Name }) {
		return fail(CodeInvalidParameter, "invalid parameter: group name exists")
	}
	g := &kGroup{id: s.randString(24, alnum), name: req.Name}
	s.knowledge.groups = append(s.knowledge.groups, g)
	return result{v: kGroupAddResp{okBody: okay(), GroupID: g.id}}
}

// handleKnowledgeDelGroup is POST kf/knowledge/del_group {group_id}; the default group cannot be
// deleted; the group's intents go with it.
func (s *Server) handleKnowledgeDelGroup(c *call) result {
	var req kGroupReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.knowledge.group(req.GroupID)
	switch {
	case req.GroupID == "":
		return fail(CodeInvalidParameter, "invalid parameter: group_id missing")
	case g == nil:
		return fail(CodeInvalidParameter, "invalid parameter: unknown group_id")
	case g.isDefault:
		return fail(CodeInvalidParameter, "invalid parameter: the default group cannot be deleted")
	}
	s.knowledge.groups = slices.DeleteFunc(s.knowledge.groups, func(x *kGroup) bool { return x == g })
	s.knowledge.intents = slices.DeleteFunc(s.knowledge.intents, func(x *kIntent) bool { return x.groupID == g.id })
	return result{}
}

// handleKnowledgeModGroup is POST kf/knowledge/mod_group {group_id, name}.
func (s *Server) handleKnowledgeModGroup(c *call) result {
	var req kGroupReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	if req.GroupID == "" || req.Name == "" {
		return fail(CodeInvalidParameter, "invalid parameter: group_id and name required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.knowledge.group(req.GroupID)
	if g == nil {
		return fail(CodeInvalidParameter, "invalid parameter: unknown group_id")
	}
	g.name = req.Name
	return result{}
}

type kListReq struct {
	Cursor   string `json:"cursor"`
	Limit    *int   `json:"limit"`
	GroupID  string `json:"group_id"`
	IntentID string `json:"intent_id"`
}

func (req *kListReq) window() (offset, limit int, e *apiError) {
	limit = 100
	if req.Limit != nil {
		if *req.Limit < 1 || *req.Limit > MaxKnowledgeListLimit {
			return 0, 0, errf(CodeInvalidParameter, "invalid parameter: limit must be 1..1000")
		}
		limit = *req.Limit
	}
	if req.Cursor != "" {
		n, err := strconv.Atoi(req.Cursor)
		if err != nil || n < 0 {
			return 0, 0, errf(CodeInvalidParameter, "invalid parameter: invalid cursor")
		}
		offset = n
	}
	return offset, limit, nil
}

type kGroupInfo struct {
	GroupID   string `json:"group_id"`
	Name      string `json:"name"`
	IsDefault int    `json:"is_default"`
}

type kGroupListResp struct {
	okBody
	NextCursor string       `json:"next_cursor"`
	HasMore    int          `json:"has_more"`
	GroupList  []kGroupInfo `json:"group_list"`
}

// handleKnowledgeListGroup is POST kf/knowledge/list_group {cursor, limit 1..1000 (100), group_id?}.
func (s *Server) handleKnowledgeListGroup(c *call) result {
	var req kListReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	off, limit, e := req.window()
	if e != nil {
		return failErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*kGroup
	for _, g := range s.knowledge.groups {
		if req.GroupID == "" || g.id == req.GroupID {
			all = append(all, g)
		}
	}
	resp := kGroupListResp{okBody: okay(), GroupList: []kGroupInfo{}}
	for i := off; i < len(all) && len(resp.GroupList) < limit; i++ {
		d := 0
		if all[i].isDefault {
			d = 1
		}
		resp.GroupList = append(resp.GroupList, kGroupInfo{GroupID: all[i].id, Name: all[i].name, IsDefault: d})
	}
	if next := off + len(resp.GroupList); next < len(all) {
		resp.HasMore, resp.NextCursor = 1, strconv.Itoa(next)
	}
	return result{v: resp}
}

type kContent struct {
	Text *struct {
		Content string `json:"content"`
	} `json:"text"`
}

type kIntentReq struct {
	GroupID          string          `json:"group_id"`
	IntentID         string          `json:"intent_id"`
	Question         json.RawMessage `json:"question"`
	SimilarQuestions json.RawMessage `json:"similar_questions"`
	Answers          json.RawMessage `json:"answers"`
}

func checkQuestion(raw json.RawMessage) *apiError {
	var q kContent
	if len(raw) == 0 || json.Unmarshal(raw, &q) != nil || q.Text == nil || q.Text.Content == "" {
		return errf(CodeInvalidParameter, "invalid parameter: question.text.content required")
	}
	return nil
}

// kAnswer is an answer as add_intent / mod_intent send it and list_intent returns it.
type kAnswer struct {
	Text *struct {
		Content string `json:"content"`
	} `json:"text"`
	Attachments []kAttachment `json:"attachments,omitempty"`
}

// kAttachment is an answer attachment (doc 95972): image and video carry a media_id when sent and
// only a name when listed; link {title, desc, url, pic_url}; miniprogram {title, appid, pagepath,
// thumb_media_id} (listed without thumb_media_id).
type kAttachment struct {
	MsgType     string   `json:"msgtype"`
	Image       *kMedia  `json:"image,omitempty"`
	Video       *kMedia  `json:"video,omitempty"`
	Link        *kLink   `json:"link,omitempty"`
	MiniProgram *kMiniPg `json:"miniprogram,omitempty"`
}

type kMedia struct {
	MediaID string `json:"media_id,omitempty"`
	Name    string `json:"name,omitempty"`
}

type kLink struct {
	Title  string `json:"title"`
	PicURL string `json:"pic_url,omitempty"`
	Desc   string `json:"desc,omitempty"`
	URL    string `json:"url"`
}

type kMiniPg struct {
	Title        string `json:"title,omitempty"`
	ThumbMediaID string `json:"thumb_media_id,omitempty"`
	AppID        string `json:"appid"`
	PagePath     string `json:"pagepath"`
}

// checkAnswers parses and checks answers: a non-empty list, each with text content, and each
// attachment of type image, video, link or miniprogram with its own body (40058 otherwise, an
// approximation); an image or video media_id must be a stored media of that kind (40007).
func (s *Server) checkAnswers(raw json.RawMessage) ([]kAnswer, *apiError) {
	var as []kAnswer
	if len(raw) == 0 || json.Unmarshal(raw, &as) != nil || len(as) == 0 {
		return nil, errf(CodeInvalidParameter, "invalid parameter: answers must be a non-empty list")
	}
	for i, a := range as {
		if a.Text == nil || a.Text.Content == "" {
			return nil, errf(CodeInvalidParameter, "invalid parameter: answers[].text.content required")
		}
		for j, at := range a.Attachments {
			if e := s.checkAttachment(at); e != nil {
				e.Msg += fmt.Sprintf(" (answers[%d].attachments[%d])", i, j)
				return nil, e
			}
		}
	}
	return as, nil
}

func (s *Server) checkAttachment(at kAttachment) *apiError {
	media := func(kind string, m *kMedia) *apiError {
		if m == nil || m.MediaID == "" {
			return errf(CodeInvalidParameter, "invalid parameter: "+kind+".media_id required")
		}
		s.mu.Lock()
		item := s.media[m.MediaID]
		s.mu.Unlock()
		if item == nil || item.kind != kind {
			return errf(CodeInvalidMediaID, "invalid media_id")
		}
		return nil
	}
	switch at.MsgType {
	case "image":
		return media("image", at.Image)
	case "video":
		return media("video", at.Video)
	case "link":
		if at.Link == nil {
			return errf(CodeInvalidParameter, "invalid parameter: link missing")
		}
		return firstErr(required("link.title", at.Link.Title), required("link.url", at.Link.URL))
	case "miniprogram":
		if at.MiniProgram == nil {
			return errf(CodeInvalidParameter, "invalid parameter: miniprogram missing")
		}
		return firstErr(required("miniprogram.appid", at.MiniProgram.AppID), required("miniprogram.pagepath", at.MiniProgram.PagePath))
	}
	return errf(CodeInvalidMsgType, fmt.Sprintf("invalid attachment msgtype %q", at.MsgType))
}

// listedAnswersLocked renders answers as list_intent returns them: image and video attachments by the
// uploaded file's name only, mini programs without thumb_media_id. Called with s.mu held.
func (s *Server) listedAnswersLocked(as []kAnswer) json.RawMessage {
	out := make([]kAnswer, len(as))
	for i, a := range as {
		out[i] = kAnswer{Text: a.Text}
		for _, at := range a.Attachments {
			l := kAttachment{MsgType: at.MsgType, Link: at.Link}
			name := func(m *kMedia) *kMedia {
				if m == nil {
					return nil
				}
				n := ""
				if item := s.media[m.MediaID]; item != nil {
					n = item.filename
				}
				return &kMedia{Name: n}
			}
			l.Image, l.Video = name(at.Image), name(at.Video)
			if mp := at.MiniProgram; mp != nil {
				l.MiniProgram = &kMiniPg{Title: mp.Title, AppID: mp.AppID, PagePath: mp.PagePath}
			}
			out[i].Attachments = append(out[i].Attachments, l)
		}
	}
	b, _ := json.Marshal(out)
	return b
}

type kIntentAddResp struct {
	okBody
	IntentID string `json:"intent_id"`
}

// handleKnowledgeAddIntent is POST kf/knowledge/add_intent {group_id, question{text{content}},
// similar_questions?, answers[{text{content}, attachments?}]} → {intent_id}.
func (s *Server) handleKnowledgeAddIntent(c *call) result {
	var req kIntentReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	if e := firstErr(required("group_id", req.GroupID), checkQuestion(req.Question)); e != nil {
		return failErr(e)
	}
	answers, e := s.checkAnswers(req.Answers)
	if e != nil {
		return failErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.knowledge.group(req.GroupID) == nil {
		return fail(CodeInvalidParameter, "invalid parameter: unknown group_id")
	}
	it := &kIntent{id: s.randString(24, alnum), groupID: req.GroupID, question: req.Question,
		similar: req.SimilarQuestions, answers: s.listedAnswersLocked(answers)}
	s.knowledge.intents = append(s.knowledge.intents, it)
	return result{v: kIntentAddResp{okBody: okay(), IntentID: it.id}}
}

// handleKnowledgeDelIntent is POST kf/knowledge/del_intent {intent_id}.
func (s *Server) handleKnowledgeDelIntent(c *call) result {
	var req kIntentReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.knowledge.intent(req.IntentID)
	if it == nil {
		return fail(CodeInvalidParameter, "invalid parameter: unknown intent_id")
	}
	s.knowledge.intents = slices.DeleteFunc(s.knowledge.intents, func(x *kIntent) bool { return x == it })
	return result{}
}

// handleKnowledgeModIntent is POST kf/knowledge/mod_intent {intent_id, question?, similar_questions?,
// answers?}: the parts given replace the stored ones.
func (s *Server) handleKnowledgeModIntent(c *call) result {
	var req kIntentReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	if len(req.Question) > 0 {
		if e := checkQuestion(req.Question); e != nil {
			return failErr(e)
		}
	}
	var answers []kAnswer
	if len(req.Answers) > 0 {
		var e *apiError
		if answers, e = s.checkAnswers(req.Answers); e != nil {
			return failErr(e)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.knowledge.intent(req.IntentID)
	if it == nil {
		return fail(CodeInvalidParameter, "invalid parameter: unknown intent_id")
	}
	if len(req.Question) > 0 {
		it.question = req.Question
	}
	if len(req.SimilarQuestions) > 0 {
		it.similar = req.SimilarQuestions
	}
	if answers != nil {
		it.answers = s.listedAnswersLocked(answers)
	}
	return result{}
}

type kIntentInfo struct {
	GroupID          string          `json:"group_id"`
	IntentID         string          `json:"intent_id"`
	Question         json.RawMessage `json:"question"`
	SimilarQuestions json.RawMessage `json:"similar_questions,omitempty"`
	Answers          json.RawMessage `json:"answers"`
}

type kIntentListResp struct {
	okBody
	NextCursor string        `json:"next_cursor"`
	HasMore    int           `json:"has_more"`
	IntentList []kIntentInfo `json:"intent_list"`
}

// handleKnowledgeListIntent is POST kf/knowledge/list_intent {group_id?, intent_id?, cursor, limit}.
func (s *Server) handleKnowledgeListIntent(c *call) result {
	var req kListReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	off, limit, e := req.window()
	if e != nil {
		return failErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*kIntent
	for _, it := range s.knowledge.intents {
		if (req.GroupID == "" || it.groupID == req.GroupID) && (req.IntentID == "" || it.id == req.IntentID) {
			all = append(all, it)
		}
	}
	resp := kIntentListResp{okBody: okay(), IntentList: []kIntentInfo{}}
	for i := off; i < len(all) && len(resp.IntentList) < limit; i++ {
		it := all[i]
		resp.IntentList = append(resp.IntentList, kIntentInfo{GroupID: it.groupID, IntentID: it.id,
			Question: it.question, SimilarQuestions: it.similar, Answers: it.answers})
	}
	if next := off + len(resp.IntentList); next < len(all) {
		resp.HasMore, resp.NextCursor = 1, strconv.Itoa(next)
	}
	return result{v: resp}
}
