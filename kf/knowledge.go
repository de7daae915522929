package kf

import "context"

// The knowledge base of the smart assistant (wecom-kf-api.md §8; doc 95971 groups, 95972 intents).

// KnowledgeGroup is a knowledge base group.
type KnowledgeGroup struct {
	GroupID string
	Name    string
	// IsDefault marks the corp's default group.
	IsDefault bool
}

// KnowledgeIntent is a question with its similar questions and answers.
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

// KnowledgeAttachment is an image, video or mini program attached to an answer; set the field
// named by MsgType (MsgTypeImage, MsgTypeVideo or MsgTypeMiniProgram).
type KnowledgeAttachment struct {
	MsgType     MsgType      `json:"msgtype"`
	Image       *Image       `json:"image,omitempty"`
	Video       *Video       `json:"video,omitempty"`
	MiniProgram *MiniProgram `json:"miniprogram,omitempty"`
}

// Wire forms.

type knowledgeText struct {
	Text struct {
		Content string `json:"content"`
	} `json:"text"`
}

func newKnowledgeText(s string) knowledgeText {
	var t knowledgeText
	t.Text.Content = s
	return t
}

type knowledgeAnswerWire struct {
	Text struct {
		Content string `json:"content"`
	} `json:"text"`
	Attachments []KnowledgeAttachment `json:"attachments,omitempty"`
}

type knowledgeIntentWire struct {
	GroupID          string        `json:"group_id,omitempty"`
	IntentID         string        `json:"intent_id,omitempty"`
	Question         knowledgeText `json:"question"`
	SimilarQuestions *struct {
		Items []knowledgeText `json:"items"`
	} `json:"similar_questions,omitempty"`
	Answers []knowledgeAnswerWire `json:"answers"`
}

func (in *KnowledgeIntent) wire() *knowledgeIntentWire {
	w := &knowledgeIntentWire{GroupID: in.GroupID, IntentID: in.IntentID, Question: newKnowledgeText(in.Question)}
	if len(in.SimilarQuestions) > 0 {
		w.SimilarQuestions = &struct {
			Items []knowledgeText `json:"items"`
		}{}
		for _, q := range in.SimilarQuestions {
			w.SimilarQuestions.Items = append(w.SimilarQuestions.Items, newKnowledgeText(q))
		}
	}
	w.Answers = make([]knowledgeAnswerWire, len(in.Answers))
	for i, a := range in.Answers {
		w.Answers[i].Text.Content = a.Text
		w.Answers[i].Attachments = a.Attachments
	}
	return w
}

func (w *knowledgeIntentWire) intent() KnowledgeIntent {
	in := KnowledgeIntent{GroupID: w.GroupID, IntentID: w.IntentID, Question: w.Question.Text.Content}
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
	case !update && in.GroupID == "":
		return invalidf("%s: group_id is required", api)
	case in.Question == "":
		return invalidf("%s: question is required", api)
	case len(in.Answers) == 0:
		return invalidf("%s: at least one answer is required", api)
	}
	for i, a := range in.Answers {
		for j, at := range a.Attachments {
			ok := false
			switch at.MsgType {
			case MsgTypeImage:
				ok = at.Image != nil && at.Image.MediaID != "" && at.Video == nil && at.MiniProgram == nil
			case MsgTypeVideo:
				ok = at.Video != nil && at.Video.MediaID != "" && at.Image == nil && at.MiniProgram == nil
			case MsgTypeMiniProgram:
				ok = at.MiniProgram != nil && at.Image == nil && at.Video == nil
			}
			if !ok {
				return invalidf("%s: answer %d attachment %d: msgtype %q needs exactly its own field set", api, i, j, at.MsgType)
			}
		}
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
	w := in.wire()
	w.IntentID = ""
	var out intentIDReply
	if err := c.call(ctx, &request{method: methodPost, path: pathKnowledgeAddIntent, body: w, retry: retryUnsafe}, &out); err != nil {
		return "", err
	}
	return out.IntentID, nil
}

// UpdateKnowledgeIntent replaces an intent's question, similar questions and answers
// (cgi-bin/kf/knowledge/mod_intent).
func (c *Client) UpdateKnowledgeIntent(ctx context.Context, in KnowledgeIntent) error {
	if err := in.validate("knowledge/mod_intent", true); err != nil {
		return err
	}
	w := in.wire()
	w.GroupID = ""
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
