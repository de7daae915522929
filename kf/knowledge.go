package kf

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
)

// The knowledge base of the smart assistant (§8; doc 95971 groups, 95972 intents).

// KnowledgeGroup is a knowledge base group.
type KnowledgeGroup struct {
	GroupID string
	Name    string
	// IsDefault marks the corp's default group.
	IsDefault bool
}

// KnowledgeIntent is a question with its similar questions and answers (doc 95972).
//
// AddKnowledgeIntent needs GroupID, Question and at least one answer. UpdateKnowledgeIntent needs
// IntentID and sends only the parts that are set: Question and Answers when not empty,
// SimilarQuestions when not nil (a non-nil empty slice is sent as an empty list, clearing them);
// WeCom overwrites each part sent and keeps the others.
type KnowledgeIntent struct {
	GroupID  string
	IntentID string // empty when adding
	// Question is the main question's text.
	Question string
	// SimilarQuestions are alternative phrasings.
	SimilarQuestions []string
	// Answers to the question (WeCom currently takes one).
	Answers []KnowledgeAnswer
}

// KnowledgeAnswer is an answer text with optional attachments.
type KnowledgeAnswer struct {
	Text        string
	Attachments []KnowledgeAttachment
}

// KnowledgeAttachment is an image, video, link or mini program attached to an answer (doc 95972);
// set the field named by MsgType (MsgTypeImage, MsgTypeVideo, MsgTypeLink or MsgTypeMiniProgram).
type KnowledgeAttachment struct {
	MsgType     MsgType         `json:"msgtype"`
	Image       *KnowledgeMedia `json:"image,omitempty"`
	Video       *KnowledgeMedia `json:"video,omitempty"`
	Link        *KnowledgeLink  `json:"link,omitempty"`
	MiniProgram *MiniProgram    `json:"miniprogram,omitempty"`
}

// KnowledgeMedia is an image or video attachment. Adding or changing an intent sends MediaID, the
// media_id of an uploaded image or video; list_intent answers only Name, the file's name, and no
// media_id, so attachments of a listed intent must be uploaded again to be sent back.
type KnowledgeMedia struct {
	MediaID string `json:"media_id,omitempty"`
	Name    string `json:"name,omitempty"`
}

// KnowledgeLink is a link attachment {title, desc, url, pic_url} (doc 95972). The published samples
// spell the picture field pic_url (sent) and, in one SDK, picurl: decoding accepts both.
type KnowledgeLink struct {
	Title  string `json:"title"`
	Desc   string `json:"desc,omitempty"`
	URL    string `json:"url"`
	PicURL string `json:"pic_url,omitempty"`
}

// UnmarshalJSON decodes a link attachment, taking the picture from pic_url or picurl.
func (l *KnowledgeLink) UnmarshalJSON(data []byte) error {
	var w struct {
		Title  string `json:"title"`
		Desc   string `json:"desc"`
		URL    string `json:"url"`
		PicURL string `json:"pic_url"`
		Picurl string `json:"picurl"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*l = KnowledgeLink{Title: w.Title, Desc: w.Desc, URL: w.URL, PicURL: cmp.Or(w.PicURL, w.Picurl)}
	return nil
}

// Wire forms.

type knowledgeText struct {
	Text struct {
		Content string `json:"content"`
	} `json:"text"`
}

func newKnowledgeText(s string) *knowledgeText {
	t := new(knowledgeText)
	t.Text.Content = s
	return t
}

type knowledgeAnswerWire struct {
	Text struct {
		Content string `json:"content"`
	} `json:"text"`
	Attachments []KnowledgeAttachment `json:"attachments,omitempty"`
}

type knowledgeSimilar struct {
	Items []knowledgeText `json:"items"`
}

type knowledgeIntentWire struct {
	GroupID          string                `json:"group_id,omitempty"`
	IntentID         string                `json:"intent_id,omitempty"`
	Question         *knowledgeText        `json:"question,omitempty"`
	SimilarQuestions *knowledgeSimilar     `json:"similar_questions,omitempty"`
	Answers          []knowledgeAnswerWire `json:"answers,omitempty"`
}

// wire encodes the intent for add_intent (update false) or mod_intent (update true: only the
// parts set, see KnowledgeIntent).
func (in *KnowledgeIntent) wire(update bool) *knowledgeIntentWire {
	w := &knowledgeIntentWire{}
	if update {
		w.IntentID = in.IntentID
	} else {
		w.GroupID = in.GroupID
	}
	if in.Question != "" || !update {
		w.Question = newKnowledgeText(in.Question)
	}
	if in.SimilarQuestions != nil && (update || len(in.SimilarQuestions) > 0) {
		w.SimilarQuestions = &knowledgeSimilar{Items: make([]knowledgeText, 0, len(in.SimilarQuestions))}
		for _, q := range in.SimilarQuestions {
			w.SimilarQuestions.Items = append(w.SimilarQuestions.Items, *newKnowledgeText(q))
		}
	}
	if len(in.Answers) > 0 {
		w.Answers = make([]knowledgeAnswerWire, len(in.Answers))
		for i, a := range in.Answers {
			w.Answers[i].Text.Content = a.Text
			w.Answers[i].Attachments = sendableAttachments(a.Attachments)
		}
	}
	return w
}

// sendableAttachments copies attachments without the names list_intent answers (WeCom takes
// media_ids only).
func sendableAttachments(as []KnowledgeAttachment) []KnowledgeAttachment {
	if as == nil {
		return nil
	}
	out := make([]KnowledgeAttachment, len(as))
	for i, a := range as {
		if a.Image != nil {
			a.Image = &KnowledgeMedia{MediaID: a.Image.MediaID}
		}
		if a.Video != nil {
			a.Video = &KnowledgeMedia{MediaID: a.Video.MediaID}
		}
		out[i] = a
	}
	return out
}

func (w *knowledgeIntentWire) intent() KnowledgeIntent {
	in := KnowledgeIntent{GroupID: w.GroupID, IntentID: w.IntentID}
	if w.Question != nil {
		in.Question = w.Question.Text.Content
	}
	if w.SimilarQuestions != nil {
		for _, q := range w.SimilarQuestions.Items {
			in.SimilarQuestions = append(in.SimilarQuestions, q.Text.Content)
		}
	}
	for _, a := range w.Answers {
		in.Answers = append(in.Answers, KnowledgeAnswer{Text: a.Text.Content, Attachments: a.Attachments})
	}
	return in
}

func (in *KnowledgeIntent) validate(api string, update bool) error {
	switch {
	case update && in.IntentID == "":
		return invalidf("%s: intent_id is required", api)
	case update && in.Question == "" && in.SimilarQuestions == nil && len(in.Answers) == 0:
		return invalidf("%s: nothing to change: set question, similar questions or answers", api)
	case !update && in.GroupID == "":
		return invalidf("%s: group_id is required", api)
	case !update && in.Question == "":
		return invalidf("%s: question is required", api)
	case !update && len(in.Answers) == 0:
		return invalidf("%s: at least one answer is required", api)
	}
	for i, a := range in.Answers {
		for j, at := range a.Attachments {
			if err := at.check(); err != nil {
				return invalidf("%s: answer %d attachment %d: %v", api, i, j, err)
			}
		}
	}
	return nil
}

// check requires exactly the field named by MsgType, with what identifies it: a media_id for an
// image or video, a title and url for a link.
func (at *KnowledgeAttachment) check() error {
	set := 0
	for _, p := range []bool{at.Image != nil, at.Video != nil, at.Link != nil, at.MiniProgram != nil} {
		if p {
			set++
		}
	}
	ok := set == 1
	switch at.MsgType {
	case MsgTypeImage:
		ok = ok && at.Image != nil && at.Image.MediaID != ""
	case MsgTypeVideo:
		ok = ok && at.Video != nil && at.Video.MediaID != ""
	case MsgTypeLink:
		ok = ok && at.Link != nil && at.Link.Title != "" && at.Link.URL != ""
	case MsgTypeMiniProgram:
		ok = ok && at.MiniProgram != nil
	default:
		return fmt.Errorf("msgtype %q is not image, video, link or miniprogram", at.MsgType)
	}
	if !ok {
		return fmt.Errorf("msgtype %q needs exactly its own field set (image/video: media_id; link: title and url)", at.MsgType)
	}
	return nil
}

type groupIDReply struct {
	apiStatus
	GroupID string `json:"group_id"`
}

// AddKnowledgeGroup creates a knowledge base group and returns its id
// (cgi-bin/kf/knowledge/add_group, doc 95971). Not retried on busy errors.
func (c *Client) AddKnowledgeGroup(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", invalidf("knowledge/add_group: name is required")
	}
	var out groupIDReply
	body := struct {
		Name string `json:"name"`
	}{name}
	if err := c.call(ctx, &request{method: methodPost, path: pathKnowledgeAddGroup, body: body, retry: retryUnsafe}, &out); err != nil {
		return "", err
	}
	return out.GroupID, nil
}

// DeleteKnowledgeGroup deletes a group (cgi-bin/kf/knowledge/del_group).
func (c *Client) DeleteKnowledgeGroup(ctx context.Context, groupID string) error {
	if groupID == "" {
		return invalidf("knowledge/del_group: group_id is required")
	}
	body := struct {
		GroupID string `json:"group_id"`
	}{groupID}
	return c.call(ctx, &request{method: methodPost, path: pathKnowledgeDelGroup, body: body, retry: retryIdempotent}, nil)
}

// RenameKnowledgeGroup renames a group (cgi-bin/kf/knowledge/mod_group).
func (c *Client) RenameKnowledgeGroup(ctx context.Context, groupID, name string) error {
	if groupID == "" || name == "" {
		return invalidf("knowledge/mod_group: group_id and name are required")
	}
	body := struct {
		GroupID string `json:"group_id"`
		Name    string `json:"name"`
	}{groupID, name}
	return c.call(ctx, &request{method: methodPost, path: pathKnowledgeModGroup, body: body, retry: retryIdempotent}, nil)
}

// MaxKnowledgeListLimit is the largest list_group / list_intent page.
const MaxKnowledgeListLimit = 1000

// KnowledgeListRequest pages through groups or intents. Cursor is the previous page's NextCursor;
// Limit is 1..1000 (0: WeCom's default); GroupID and IntentID filter (IntentID: intents only).
type KnowledgeListRequest struct {
	Cursor   string `json:"cursor,omitempty"`
	Limit    int    `json:"limit,omitempty"`
	GroupID  string `json:"group_id,omitempty"`
	IntentID string `json:"intent_id,omitempty"`
}

func (r *KnowledgeListRequest) validate(api string) error {
	if r.Limit < 0 || r.Limit > MaxKnowledgeListLimit {
		return invalidf("%s: limit %d not in 1..%d (0 for the default)", api, r.Limit, MaxKnowledgeListLimit)
	}
	return nil
}

// KnowledgeGroupPage is a page of list_group.
type KnowledgeGroupPage struct {
	NextCursor string
	HasMore    bool
	Groups     []KnowledgeGroup
}

type groupListReply struct {
	apiStatus
	NextCursor string  `json:"next_cursor"`
	HasMore    intFlag `json:"has_more"`
	GroupList  []struct {
		GroupID   string  `json:"group_id"`
		Name      string  `json:"name"`
		IsDefault intFlag `json:"is_default"`
	} `json:"group_list"`
}

// ListKnowledgeGroups returns a page of groups (cgi-bin/kf/knowledge/list_group).
func (c *Client) ListKnowledgeGroups(ctx context.Context, req KnowledgeListRequest) (*KnowledgeGroupPage, error) {
	if err := req.validate("knowledge/list_group"); err != nil {
		return nil, err
	}
	if req.IntentID != "" {
		return nil, invalidf("knowledge/list_group: intent_id is for list_intent")
	}
	var out groupListReply
	if err := c.call(ctx, &request{method: methodPost, path: pathKnowledgeListGroup, body: &req, retry: retryIdempotent}, &out); err != nil {
		return nil, err
	}
	page := &KnowledgeGroupPage{NextCursor: out.NextCursor, HasMore: bool(out.HasMore), Groups: make([]KnowledgeGroup, len(out.GroupList))}
	for i, g := range out.GroupList {
		page.Groups[i] = KnowledgeGroup{GroupID: g.GroupID, Name: g.Name, IsDefault: bool(g.IsDefault)}
	}
	return page, nil
}

type intentIDReply struct {
	apiStatus
	IntentID string `json:"intent_id"`
}

// AddKnowledgeIntent adds a question with its answers to a group and returns the intent id
// (cgi-bin/kf/knowledge/add_intent, doc 95972). Not retried on busy errors.
func (c *Client) AddKnowledgeIntent(ctx context.Context, in KnowledgeIntent) (string, error) {
	if err := in.validate("knowledge/add_intent", false); err != nil {
		return "", err
	}
	w := in.wire(false)
	var out intentIDReply
	if err := c.call(ctx, &request{method: methodPost, path: pathKnowledgeAddIntent, body: w, retry: retryUnsafe}, &out); err != nil {
		return "", err
	}
	return out.IntentID, nil
}

// UpdateKnowledgeIntent changes an intent (cgi-bin/kf/knowledge/mod_intent, doc 95972): the
// question, the similar questions and the answers are each optional, and each part sent replaces the
// stored one (see KnowledgeIntent for what is sent).
func (c *Client) UpdateKnowledgeIntent(ctx context.Context, in KnowledgeIntent) error {
	if err := in.validate("knowledge/mod_intent", true); err != nil {
		return err
	}
	w := in.wire(true)
	return c.call(ctx, &request{method: methodPost, path: pathKnowledgeModIntent, body: w, retry: retryIdempotent}, nil)
}

// DeleteKnowledgeIntent deletes an intent (cgi-bin/kf/knowledge/del_intent).
func (c *Client) DeleteKnowledgeIntent(ctx context.Context, intentID string) error {
	if intentID == "" {
		return invalidf("knowledge/del_intent: intent_id is required")
	}
	body := struct {
		IntentID string `json:"intent_id"`
	}{intentID}
	return c.call(ctx, &request{method: methodPost, path: pathKnowledgeDelIntent, body: body, retry: retryIdempotent}, nil)
}

// KnowledgeIntentPage is a page of list_intent.
type KnowledgeIntentPage struct {
	NextCursor string
	HasMore    bool
	Intents    []KnowledgeIntent
}

type intentListReply struct {
	apiStatus
	NextCursor string                `json:"next_cursor"`
	HasMore    intFlag               `json:"has_more"`
	IntentList []knowledgeIntentWire `json:"intent_list"`
}

// ListKnowledgeIntents returns a page of intents (cgi-bin/kf/knowledge/list_intent).
func (c *Client) ListKnowledgeIntents(ctx context.Context, req KnowledgeListRequest) (*KnowledgeIntentPage, error) {
	if err := req.validate("knowledge/list_intent"); err != nil {
		return nil, err
	}
	var out intentListReply
	if err := c.call(ctx, &request{method: methodPost, path: pathKnowledgeListIntent, body: &req, retry: retryIdempotent}, &out); err != nil {
		return nil, err
	}
	page := &KnowledgeIntentPage{NextCursor: out.NextCursor, HasMore: bool(out.HasMore), Intents: make([]KnowledgeIntent, len(out.IntentList))}
	for i := range out.IntentList {
		page.Intents[i] = out.IntentList[i].intent()
	}
	return page, nil
}
