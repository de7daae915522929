package kf

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Account limits (§8, doc 94662, 94665).
const (
	// MaxAccountNameChars is the longest kf account name, in characters.
	MaxAccountNameChars = 16
	// MaxAccountListLimit is the largest account/list page.
	MaxAccountListLimit = 100
	// MaxSceneBytes is the longest add_contact_way scene ([0-9a-zA-Z_-]).
	MaxSceneBytes = 32
	// MaxSceneParamBytes is the longest scene_param appended to a contact URL.
	MaxSceneParamBytes = 128
)

// Account is a kf account (客服帐号) of account/list (§8).
type Account struct {
	OpenKfID string `json:"open_kfid"`
	Name     string `json:"name"`
	// Avatar is the avatar's URL.
	Avatar string `json:"avatar,omitempty"`
	// ManagePrivilege reports whether the calling app may manage the account.
	ManagePrivilege bool `json:"manage_privilege"`
}

func checkAccountName(name string, required bool) error {
	switch {
	case name == "" && required:
		return invalidf("account name is required")
	case !utf8.ValidString(name):
		return invalidf("account name is not valid UTF-8")
	case utf8.RuneCountInString(name) > MaxAccountNameChars:
		return invalidf("account name has %d characters, max %d", utf8.RuneCountInString(name), MaxAccountNameChars)
	}
	return nil
}

type openKfIDReply struct {
	apiStatus
	OpenKfID string `json:"open_kfid"`
}

// AddAccount creates a kf account named name (≤ 16 characters) with the uploaded avatar image
// avatarMediaID and returns its open_kfid (cgi-bin/kf/account/add, §8). Not retried on busy
// errors: a retry could create the account twice.
func (c *Client) AddAccount(ctx context.Context, name, avatarMediaID string) (string, error) {
	if err := checkAccountName(name, true); err != nil {
		return "", err
	}
	if avatarMediaID == "" {
		return "", invalidf("account/add: media_id is required")
	}
	body := struct {
		Name    string `json:"name"`
		MediaID string `json:"media_id"`
	}{name, avatarMediaID}
	var out openKfIDReply
	if err := c.call(ctx, &request{method: methodPost, path: pathAccountAdd, body: body, retry: retryUnsafe}, &out); err != nil {
		return "", err
	}
	return out.OpenKfID, nil
}

type openKfIDBody struct {
	OpenKfID string `json:"open_kfid"`
}

// DeleteAccount deletes a kf account (cgi-bin/kf/account/del, §8).
func (c *Client) DeleteAccount(ctx context.Context, openKfID string) error {
	if openKfID == "" {
		return invalidf("account/del: open_kfid is required")
	}
	return c.call(ctx, &request{method: methodPost, path: pathAccountDel, body: openKfIDBody{openKfID}, retry: retryIdempotent}, nil)
}

// UpdateAccountRequest changes a kf account's name and/or avatar (§8); empty fields are unchanged.
type UpdateAccountRequest struct {
	OpenKfID string `json:"open_kfid"`
	Name     string `json:"name,omitempty"`
	MediaID  string `json:"media_id,omitempty"`
}

// UpdateAccount changes a kf account (cgi-bin/kf/account/update, §8).
func (c *Client) UpdateAccount(ctx context.Context, req UpdateAccountRequest) error {
	switch {
	case req.OpenKfID == "":
		return invalidf("account/update: open_kfid is required")
	case req.Name == "" && req.MediaID == "":
		return invalidf("account/update: nothing to change (name and media_id empty)")
	}
	if err := checkAccountName(req.Name, false); err != nil {
		return err
	}
	return c.call(ctx, &request{method: methodPost, path: pathAccountUpdate, body: &req, retry: retryIdempotent}, nil)
}

type accountListReply struct {
	apiStatus
	AccountList []Account `json:"account_list"`
}

// ListAccounts returns one page of kf accounts (cgi-bin/kf/account/list, POST with paging, §8):
// offset ≥ 0 and limit 1..100 (0 means 100). A page shorter than limit is the last.
func (c *Client) ListAccounts(ctx context.Context, offset, limit int) ([]Account, error) {
	if offset < 0 {
		return nil, invalidf("account/list: offset %d < 0", offset)
	}
	if limit == 0 {
		limit = MaxAccountListLimit
	}
	if limit < 1 || limit > MaxAccountListLimit {
		return nil, invalidf("account/list: limit %d not in 1..%d", limit, MaxAccountListLimit)
	}
	body := struct {
		Offset int `json:"offset"`
		Limit  int `json:"limit"`
	}{offset, limit}
	var out accountListReply
	if err := c.call(ctx, &request{method: methodPost, path: pathAccountList, body: body, retry: retryIdempotent}, &out); err != nil {
		return nil, err
	}
	return out.AccountList, nil
}

// AllAccounts pages through account/list and returns every kf account.
func (c *Client) AllAccounts(ctx context.Context) ([]Account, error) {
	var all []Account
	for offset := 0; ; offset += MaxAccountListLimit {
		page, err := c.ListAccounts(ctx, offset, MaxAccountListLimit)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < MaxAccountListLimit {
			return all, nil
		}
	}
}

type contactWayReply struct {
	apiStatus
	URL string `json:"url"`
}

// AddContactWay returns the contact URL of a kf account (cgi-bin/kf/add_contact_way, §8). scene
// (optional, ≤ 32 bytes of [0-9a-zA-Z_-]) comes back in enter_session events; add a per-link
// scene_param with AppendSceneParam.
func (c *Client) AddContactWay(ctx context.Context, openKfID, scene string) (string, error) {
	if openKfID == "" {
		return "", invalidf("add_contact_way: open_kfid is required")
	}
	if err := checkScene(scene); err != nil {
		return "", err
	}
	body := struct {
		OpenKfID string `json:"open_kfid"`
		Scene    string `json:"scene,omitempty"`
	}{openKfID, scene}
	var out contactWayReply
	if err := c.call(ctx, &request{method: methodPost, path: pathAddContactWay, body: body, retry: retryIdempotent}, &out); err != nil {
		return "", err
	}
	return out.URL, nil
}

func checkScene(scene string) error {
	if len(scene) > MaxSceneBytes {
		return invalidf("scene is %d bytes, max %d", len(scene), MaxSceneBytes)
	}
	for i := 0; i < len(scene); i++ {
		c := scene[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-') {
			return invalidf("scene %q has %q; only [0-9a-zA-Z_-] is allowed", scene, c)
		}
	}
	return nil
}

// AppendSceneParam appends scene_param to a contact URL from AddContactWay (§8): the value (≤ 128
// bytes before encoding) comes back in the enter_session event.
func AppendSceneParam(contactURL, sceneParam string) (string, error) {
	if len(sceneParam) > MaxSceneParamBytes {
		return "", invalidf("scene_param is %d bytes, max %d", len(sceneParam), MaxSceneParamBytes)
	}
	if !utf8.ValidString(sceneParam) {
		return "", invalidf("scene_param is not valid UTF-8")
	}
	u, err := url.Parse(contactURL)
	if err != nil || u.Host == "" {
		return "", invalidf("contact URL %q is not an absolute URL", contactURL)
	}
	sep := "?"
	if strings.Contains(contactURL, "?") {
		sep = "&"
	}
	return contactURL + sep + "scene_param=" + url.QueryEscape(sceneParam), nil
}

// Servicer is a member or department of servicer/list (§8). Status is encoded the other way round
// from servicer_status_change events: 0 receiving, 1 stopped (see Receiving).
type Servicer struct {
	UserID       string `json:"userid,omitempty"`
	DepartmentID int64  `json:"department_id,omitempty"`
	Status       int    `json:"status"`
	// StopType, when stopped: 0 stopped receiving, 1 suspended.
	StopType int `json:"stop_type,omitempty"`
}

// Receiving reports whether a member servicer is receiving (servicer/list status 0).
func (s Servicer) Receiving() bool { return s.UserID != "" && s.Status == 0 }

// ServicerResult is the per-member or per-department result of servicer/add and servicer/del.
type ServicerResult struct {
	UserID       string `json:"userid,omitempty"`
	DepartmentID int64  `json:"department_id,omitempty"`
	ErrCode      int    `json:"errcode"`
	ErrMsg       string `json:"errmsg"`
}

// Err returns the result as an *APIError, or nil when it succeeded.
func (r ServicerResult) Err() error {
	if r.ErrCode == 0 {
		return nil
	}
	return &APIError{Code: r.ErrCode, Msg: redact(r.ErrMsg)}
}

// MaxServicersPerCall is the most members (and departments) servicer/add and servicer/del take.
const MaxServicersPerCall = 100

// ServicersRequest names the members and departments to add to or remove from a kf account.
type ServicersRequest struct {
	OpenKfID      string   `json:"open_kfid"`
	UserIDs       []string `json:"userid_list,omitempty"`
	DepartmentIDs []int64  `json:"department_id_list,omitempty"`
}

func (r *ServicersRequest) validate(api string) error {
	switch {
	case r.OpenKfID == "":
		return invalidf("%s: open_kfid is required", api)
	case len(r.UserIDs) == 0 && len(r.DepartmentIDs) == 0:
		return invalidf("%s: userid_list and department_id_list are both empty", api)
	case len(r.UserIDs) > MaxServicersPerCall:
		return invalidf("%s: %d userids, max %d", api, len(r.UserIDs), MaxServicersPerCall)
	case len(r.DepartmentIDs) > MaxServicersPerCall:
		return invalidf("%s: %d department ids, max %d", api, len(r.DepartmentIDs), MaxServicersPerCall)
	}
	return nil
}

type servicerResultReply struct {
	apiStatus
	ResultList []ServicerResult `json:"result_list"`
}

// AddServicers adds members and departments as servicers of a kf account (cgi-bin/kf/servicer/add,
// §8). The call succeeds as a whole; check each result's ErrCode.
func (c *Client) AddServicers(ctx context.Context, req ServicersRequest) ([]ServicerResult, error) {
	return c.servicers(ctx, pathServicerAdd, "servicer/add", req)
}

// DeleteServicers removes servicers from a kf account (cgi-bin/kf/servicer/del, §8); check each
// result's ErrCode.
func (c *Client) DeleteServicers(ctx context.Context, req ServicersRequest) ([]ServicerResult, error) {
	return c.servicers(ctx, pathServicerDel, "servicer/del", req)
}

func (c *Client) servicers(ctx context.Context, path, api string, req ServicersRequest) ([]ServicerResult, error) {
	if err := req.validate(api); err != nil {
		return nil, err
	}
	var out servicerResultReply
	if err := c.call(ctx, &request{method: methodPost, path: path, body: &req, retry: retryIdempotent}, &out); err != nil {
		return nil, err
	}
	return out.ResultList, nil
}

type servicerListReply struct {
	apiStatus
	ServicerList []Servicer `json:"servicer_list"`
}

// ListServicers returns the servicers of a kf account (GET cgi-bin/kf/servicer/list, §8).
func (c *Client) ListServicers(ctx context.Context, openKfID string) ([]Servicer, error) {
	if openKfID == "" {
		return nil, invalidf("servicer/list: open_kfid is required")
	}
	var out servicerListReply
	err := c.call(ctx, &request{method: methodGet, path: pathServicerList, query: []string{"open_kfid", openKfID}, retry: retryIdempotent}, &out)
	if err != nil {
		return nil, err
	}
	return out.ServicerList, nil
}

// Gender of a customer (§8 customer/batchget).
type Gender int

// Genders.
const (
	GenderUnknown Gender = 0
	GenderMale    Gender = 1
	GenderFemale  Gender = 2
)

// String returns "unknown", "male" or "female".
func (g Gender) String() string {
	switch g {
	case GenderUnknown:
		return "unknown"
	case GenderMale:
		return "male"
	case GenderFemale:
		return "female"
	}
	return "Gender(" + strconv.Itoa(int(g)) + ")"
}

// Customer is a WeChat customer of customer/batchget (§8).
type Customer struct {
	ExternalUserID string `json:"external_userid"`
	Nickname       string `json:"nickname"`
	Avatar         string `json:"avatar,omitempty"`
	Gender         Gender `json:"gender"`
	UnionID        string `json:"unionid,omitempty"`
	// EnterSessionContext is how the customer last entered a session, when asked for.
	EnterSessionContext *EnterSessionContext `json:"enter_session_context,omitempty"`
}

// EnterSessionContext is the context of a customer's latest enter_session (§8).
type EnterSessionContext struct {
	Scene          string          `json:"scene,omitempty"`
	SceneParam     string          `json:"scene_param,omitempty"`
	WechatChannels *WechatChannels `json:"wechat_channels,omitempty"`
}

// MaxCustomersPerCall is the most external_userids customer/batchget takes.
const MaxCustomersPerCall = 100

// Customers is the result of customer/batchget.
type Customers struct {
	Customers []Customer `json:"customer_list"`
	// InvalidExternalUserIDs lists the ids WeCom did not recognise.
	InvalidExternalUserIDs []string `json:"invalid_external_userid"`
}

type customersReply struct {
	apiStatus
	Customers
}

// BatchGetCustomers returns the profiles of 1..100 customers (cgi-bin/kf/customer/batchget, §8),
// with their latest enter_session context when withContext.
func (c *Client) BatchGetCustomers(ctx context.Context, externalUserIDs []string, withContext bool) (*Customers, error) {
	if len(externalUserIDs) == 0 || len(externalUserIDs) > MaxCustomersPerCall {
		return nil, invalidf("customer/batchget: %d external_userids, want 1..%d", len(externalUserIDs), MaxCustomersPerCall)
	}
	body := struct {
		ExternalUserIDs []string `json:"external_userid_list"`
		NeedContext     int      `json:"need_enter_session_context"`
	}{ExternalUserIDs: externalUserIDs}
	if withContext {
		body.NeedContext = 1
	}
	var out customersReply
	if err := c.call(ctx, &request{method: methodPost, path: pathCustomerBatchGet, body: body, retry: retryIdempotent}, &out); err != nil {
		return nil, err
	}
	return &out.Customers, nil
}

// CorpQualification is the reply of get_corp_qualification (§8). The endpoint is documented on the
// standalone kf site only (id 95168 there); its method (GET here, as most SDKs call it) and whether a
// self-built app may call it are unconfirmed.
type CorpQualification struct {
	// WechatChannelsBinding reports whether the corp has at least one WeChat Channels (视频号) account
	// whose binding its admin confirmed.
	WechatChannelsBinding bool `json:"wechat_channels_binding"`
}

type corpQualificationReply struct {
	apiStatus
	CorpQualification
}

// GetCorpQualification returns the corp's kf qualifications (GET cgi-bin/kf/get_corp_qualification,
// §8; partly unconfirmed, see CorpQualification).
func (c *Client) GetCorpQualification(ctx context.Context) (*CorpQualification, error) {
	var out corpQualificationReply
	if err := c.call(ctx, &request{method: methodGet, path: pathGetCorpQualification, retry: retryIdempotent}, &out); err != nil {
		return nil, err
	}
	return &out.CorpQualification, nil
}
