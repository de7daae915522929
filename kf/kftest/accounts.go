package kftest

import (
	"fmt"
	"hash/fnv"
	"net/url"
	"slices"
	"time"
	"unicode/utf8"
)

// Limits of §8 (doc 94662 and neighbours).
const (
	MaxAccountNameChars = 16                   // kf account name, in characters (else 95006)
	MaxSceneBytes       = 32                   // add_contact_way scene, [0-9a-zA-Z_-] (else 40058)
	MaxListLimit        = 100                  // account/list limit, servicer lists, batchget ids (else 40058)
	MaxStatisticDays    = 31                   // days per statistics call (else 40058)
	StatisticHistory    = 180 * 24 * time.Hour // how far back statistics go (else 40058)
)

func shortHash(s string) string {
	h := fnv.New32a()
	h.Write([]byte(s))
	return fmt.Sprintf("%08x", h.Sum32())
}

type accountAddReq struct {
	Name    *string `json:"name"`
	MediaID *string `json:"media_id"`
}

type accountAddResp struct {
	okBody
	OpenKfID string `json:"open_kfid"`
}

func checkAccountName(name string) *apiError {
	if n := utf8.RuneCountInString(name); n == 0 || n > MaxAccountNameChars {
		return errf(CodeInvalidAccountName, "invalid kf account name: 1..16 characters")
	}
	return nil
}

// checkAvatarLocked: an avatar media_id must be a valid image upload.
func (s *Server) checkAvatarLocked(id string, now time.Time) *apiError {
	return s.checkMediaRefsLocked([]mediaRef{{id: id, kind: "image", field: "media_id"}}, now)
}

// handleAccountAdd is POST kf/account/add {name ≤ 16 chars, media_id (image)} → {open_kfid} (§8).
func (s *Server) handleAccountAdd(c *call) result {
	var req accountAddReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	if req.Name == nil {
		return fail(CodeInvalidAccountName, "invalid kf account name: name missing")
	}
	if e := checkAccountName(*req.Name); e != nil {
		return failErr(e)
	}
	if req.MediaID == nil || *req.MediaID == "" {
		return fail(CodeInvalidMediaID, "invalid media_id: media_id missing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.checkAvatarLocked(*req.MediaID, c.now); e != nil {
		return failErr(e)
	}
	return result{v: accountAddResp{okBody: okay(), OpenKfID: s.addAccountLocked(*req.Name, *req.MediaID)}}
}

type openKfReq struct {
	OpenKfID string `json:"open_kfid"`
}

// handleAccountDel is POST kf/account/del {open_kfid} (§8).
func (s *Server) handleAccountDel(c *call) result {
	var req openKfReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.accountForLocked(req.OpenKfID); e != nil {
		return failErr(e)
	}
	delete(s.accounts, req.OpenKfID)
	s.accountIDs = slices.DeleteFunc(s.accountIDs, func(id string) bool { return id == req.OpenKfID })
	return result{}
}

type accountUpdateReq struct {
	OpenKfID string  `json:"open_kfid"`
	Name     *string `json:"name"`
	MediaID  *string `json:"media_id"`
}

// handleAccountUpdate is POST kf/account/update {open_kfid, name?, media_id?} (§8).
func (s *Server) handleAccountUpdate(c *call) result {
	var req accountUpdateReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	acc, e := s.accountForLocked(req.OpenKfID)
	if e != nil {
		return failErr(e)
	}
	if req.Name != nil {
		if e := checkAccountName(*req.Name); e != nil {
			return failErr(e)
		}
	}
	if req.MediaID != nil {
		if e := s.checkAvatarLocked(*req.MediaID, c.now); e != nil {
			return failErr(e)
		}
	}
	if req.Name == nil && req.MediaID == nil {
		return fail(CodeInvalidParameter, "invalid parameter: nothing to update")
	}
	if req.Name != nil {
		acc.name = *req.Name
	}
	if req.MediaID != nil {
		acc.mediaID = *req.MediaID
	}
	return result{}
}

type pagingReq struct {
	Offset *int `json:"offset"`
	Limit  *int `json:"limit"`
}

type accountInfo struct {
	OpenKfID        string `json:"open_kfid"`
	Name            string `json:"name"`
	Avatar          string `json:"avatar"`
	ManagePrivilege bool   `json:"manage_privilege"`
}

type accountListResp struct {
	okBody
	AccountList []accountInfo `json:"account_list"`
}

// handleAccountList is kf/account/list (§8): POST {offset ≥ 0, limit 1..100 (default 100)}; GET (the
// old form) lists the first 100.
func (s *Server) handleAccountList(c *call) result {
	offset, limit := 0, MaxListLimit
	if c.r.Method == "POST" {
		var req pagingReq
		if e := c.decode(&req); e != nil {
			return failErr(e)
		}
		if req.Offset != nil {
			if *req.Offset < 0 {
				return fail(CodeInvalidParameter, "invalid parameter: offset must be ≥ 0")
			}
			offset = *req.Offset
		}
		if req.Limit != nil {
			if *req.Limit < 1 || *req.Limit > MaxListLimit {
				return fail(CodeInvalidParameter, "invalid parameter: limit must be 1..100")
			}
			limit = *req.Limit
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := accountListResp{okBody: okay(), AccountList: []accountInfo{}}
	for i := offset; i < len(s.accountIDs) && len(resp.AccountList) < limit; i++ {
		a := s.accounts[s.accountIDs[i]]
		resp.AccountList = append(resp.AccountList, accountInfo{
			OpenKfID: a.openKfID, Name: a.name, ManagePrivilege: true,
			Avatar: "https://wework.qpic.cn/wwhead/kftest/" + shortHash(a.openKfID+a.mediaID) + "/0",
		})
	}
	return result{v: resp}
}

type contactWayReq struct {
	OpenKfID string `json:"open_kfid"`
	Scene    string `json:"scene"`
}

type contactWayResp struct {
	okBody
	URL string `json:"url"`
}

// handleAddContactWay is POST kf/add_contact_way {open_kfid, scene ≤ 32 B [0-9a-zA-Z_-]} → {url} (§8).
// The URL carries enc_scene when a scene is given, so a caller appends "&scene_param=…".
func (s *Server) handleAddContactWay(c *call) result {
	var req contactWayReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	if len(req.Scene) > MaxSceneBytes || !isIDChars(req.Scene) {
		return fail(CodeInvalidParameter, "invalid parameter: scene must be ≤ 32 bytes of [0-9a-zA-Z_-]")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.accountForLocked(req.OpenKfID); e != nil {
		return failErr(e)
	}
	u := "https://work.weixin.qq.com/kfid/kfc" + shortHash(req.OpenKfID) + shortHash(s.cfg.corpID)
	if req.Scene != "" {
		u += "?enc_scene=ENC" + url.QueryEscape(shortHash(req.OpenKfID+"|"+req.Scene)+shortHash(req.Scene))
	}
	return result{v: contactWayResp{okBody: okay(), URL: u}}
}

// isIDChars reports whether s holds only [0-9a-zA-Z_-].
func isIDChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

type servicerReq struct {
	OpenKfID         string   `json:"open_kfid"`
	UserIDList       []string `json:"userid_list"`
	DepartmentIDList []int64  `json:"department_id_list"`
}

type servicerResult struct {
	UserID       string `json:"userid,omitempty"`
	DepartmentID int64  `json:"department_id,omitempty"`
	ErrCode      int    `json:"errcode"`
	ErrMsg       string `json:"errmsg"`
}

type servicerResp struct {
	okBody
	ResultList []servicerResult `json:"result_list"`
}

func (req *servicerReq) check() *apiError {
	if len(req.UserIDList) == 0 && len(req.DepartmentIDList) == 0 {
		return errf(CodeInvalidParameter, "invalid parameter: userid_list and department_id_list both empty")
	}
	if len(req.UserIDList) > MaxListLimit || len(req.DepartmentIDList) > MaxListLimit {
		return errf(CodeInvalidParameter, "invalid parameter: at most 100 userids and 100 departments")
	}
	return nil
}

// handleServicerAdd is POST kf/servicer/add {open_kfid, userid_list ≤ 100, department_id_list ≤ 100}
// → result_list, one entry per userid / department (§8). New servicers are receiving; an empty userid
// gets the per-entry errcode 60111 (userid not found).
func (s *Server) handleServicerAdd(c *call) result {
	var req servicerReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	if e := req.check(); e != nil {
		return failErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	acc, e := s.accountForLocked(req.OpenKfID)
	if e != nil {
		return failErr(e)
	}
	resp := servicerResp{okBody: okay(), ResultList: []servicerResult{}}
	for _, u := range req.UserIDList {
		if u == "" {
			resp.ResultList = append(resp.ResultList, servicerResult{UserID: u, ErrCode: 60111, ErrMsg: "userid not found"})
			continue
		}
		if acc.servicers[u] == nil {
			acc.servicers[u] = &servicer{userid: u, status: ServicerReceiving}
			acc.svcOrder = append(acc.svcOrder, u)
		}
		resp.ResultList = append(resp.ResultList, servicerResult{UserID: u, ErrMsg: "success"})
	}
	for _, d := range req.DepartmentIDList {
		if !slices.Contains(acc.depts, d) {
			acc.depts = append(acc.depts, d)
		}
		resp.ResultList = append(resp.ResultList, servicerResult{DepartmentID: d, ErrMsg: "success"})
	}
	return result{v: resp}
}

// handleServicerDel is POST kf/servicer/del (§8); a userid that is not a servicer gets the
// per-entry errcode 95014.
func (s *Server) handleServicerDel(c *call) result {
	var req servicerReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	if e := req.check(); e != nil {
		return failErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	acc, e := s.accountForLocked(req.OpenKfID)
	if e != nil {
		return failErr(e)
	}
	resp := servicerResp{okBody: okay(), ResultList: []servicerResult{}}
	for _, u := range req.UserIDList {
		if acc.servicers[u] == nil {
			resp.ResultList = append(resp.ResultList, servicerResult{UserID: u, ErrCode: CodeNotServicer, ErrMsg: "not a servicer"})
			continue
		}
		delete(acc.servicers, u)
		acc.svcOrder = slices.DeleteFunc(acc.svcOrder, func(x string) bool { return x == u })
		resp.ResultList = append(resp.ResultList, servicerResult{UserID: u, ErrMsg: "success"})
	}
	for _, d := range req.DepartmentIDList {
		if !slices.Contains(acc.depts, d) {
			resp.ResultList = append(resp.ResultList, servicerResult{DepartmentID: d, ErrCode: CodeNotServicer, ErrMsg: "not a servicer department"})
			continue
		}
		acc.depts = slices.DeleteFunc(acc.depts, func(x int64) bool { return x == d })
		resp.ResultList = append(resp.ResultList, servicerResult{DepartmentID: d, ErrMsg: "success"})
	}
	return result{v: resp}
}

type servicerInfo struct {
	UserID       string `json:"userid,omitempty"`
	DepartmentID int64  `json:"department_id,omitempty"`
	Status       *int   `json:"status,omitempty"`
	StopType     *int   `json:"stop_type,omitempty"`
}

type servicerListResp struct {
	okBody
	ServicerList []servicerInfo `json:"servicer_list"`
}

// handleServicerList is GET kf/servicer/list?open_kfid → servicer_list[{userid, status (0 receiving,
// 1 stopped), stop_type}] then the departments (§8).
func (s *Server) handleServicerList(c *call) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc, e := s.accountForLocked(c.query.Get("open_kfid"))
	if e != nil {
		return failErr(e)
	}
	resp := servicerListResp{okBody: okay(), ServicerList: []servicerInfo{}}
	for _, u := range acc.svcOrder {
		st, stop := ServicerReceiving, 0
		if acc.servicers[u].status != ServicerReceiving {
			st = ServicerStopped
		}
		resp.ServicerList = append(resp.ServicerList, servicerInfo{UserID: u, Status: &st, StopType: &stop})
	}
	for _, d := range acc.depts {
		resp.ServicerList = append(resp.ServicerList, servicerInfo{DepartmentID: d})
	}
	return result{v: resp}
}

type batchGetReq struct {
	ExternalUserIDList      []string `json:"external_userid_list"`
	NeedEnterSessionContext int      `json:"need_enter_session_context"`
}

type customerInfo struct {
	ExternalUserID      string          `json:"external_userid"`
	Nickname            string          `json:"nickname"`
	Avatar              string          `json:"avatar"`
	Gender              int             `json:"gender"`
	UnionID             string          `json:"unionid"`
	EnterSessionContext *sessionContext `json:"enter_session_context,omitempty"`
}

type sessionContext struct {
	Scene          string         `json:"scene"`
	SceneParam     string         `json:"scene_param"`
	WechatChannels map[string]any `json:"wechat_channels"`
}

type batchGetResp struct {
	okBody
	CustomerList          []customerInfo `json:"customer_list"`
	InvalidExternalUserID []string       `json:"invalid_external_userid"`
}

// handleCustomerBatchGet is POST kf/customer/batchget {external_userid_list 1..100,
// need_enter_session_context 0|1} (§8). Ids the fake never saw go to invalid_external_userid.
func (s *Server) handleCustomerBatchGet(c *call) result {
	var req batchGetReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	if n := len(req.ExternalUserIDList); n < 1 || n > MaxListLimit {
		return fail(CodeInvalidParameter, "invalid parameter: external_userid_list must hold 1..100 ids")
	}
	if req.NeedEnterSessionContext != 0 && req.NeedEnterSessionContext != 1 {
		return fail(CodeInvalidParameter, "invalid parameter: need_enter_session_context must be 0 or 1")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := batchGetResp{okBody: okay(), CustomerList: []customerInfo{}, InvalidExternalUserID: []string{}}
	for _, id := range req.ExternalUserIDList {
		cu := s.customers[id]
		if cu == nil {
			resp.InvalidExternalUserID = append(resp.InvalidExternalUserID, id)
			continue
		}
		ci := customerInfo{ExternalUserID: id, Nickname: cu.Nickname, Avatar: cu.Avatar, Gender: cu.Gender, UnionID: cu.UnionID}
		if req.NeedEnterSessionContext == 1 {
			ci.EnterSessionContext = &sessionContext{Scene: cu.scene, SceneParam: cu.sceneParam,
				WechatChannels: map[string]any{"nickname": "", "scene": 0}}
		}
		resp.CustomerList = append(resp.CustomerList, ci)
	}
	return result{v: resp}
}

type qualificationResp struct {
	okBody
	WechatChannelsBinding bool `json:"wechat_channels_binding"`
}

// handleCorpQualification is GET kf/get_corp_qualification (§8).
func (s *Server) handleCorpQualification(c *call) result {
	return result{v: qualificationResp{okBody: okay(), WechatChannelsBinding: s.cfg.corpQualificationBinded}}
}

type upgradeConfigResp struct {
	okBody
	MemberRange struct {
		UserIDList       []string `json:"userid_list"`
		DepartmentIDList []int64  `json:"department_id_list"`
	} `json:"member_range"`
	GroupChatRange struct {
		ChatIDList []string `json:"chat_id_list"`
	} `json:"groupchat_range"`
}

// UpgradeChatID is the group chat the fake offers in get_upgrade_service_config.
const UpgradeChatID = "wrkftestchat0000000000000000001"

// handleUpgradeConfig is GET kf/customer/get_upgrade_service_config (§8): members are the servicers of
// every account, the group chat UpgradeChatID.
func (s *Server) handleUpgradeConfig(c *call) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := upgradeConfigResp{okBody: okay()}
	resp.MemberRange.UserIDList = []string{}
	resp.MemberRange.DepartmentIDList = []int64{}
	for _, id := range s.accountIDs {
		for _, u := range s.accounts[id].svcOrder {
			if !slices.Contains(resp.MemberRange.UserIDList, u) {
				resp.MemberRange.UserIDList = append(resp.MemberRange.UserIDList, u)
			}
		}
	}
	resp.GroupChatRange.ChatIDList = []string{UpgradeChatID}
	return result{v: resp}
}

type upgradeReq struct {
	OpenKfID       string `json:"open_kfid"`
	ExternalUserID string `json:"external_userid"`
	Type           int    `json:"type"`
	Member         *struct {
		UserID  string `json:"userid"`
		Wording string `json:"wording"`
	} `json:"member"`
	GroupChat *struct {
		ChatID  string `json:"chat_id"`
		Wording string `json:"wording"`
	} `json:"groupchat"`
}

// handleUpgradeService is POST kf/customer/upgrade_service (§8): type 1 needs member.userid, type 2
// groupchat.chat_id; the customer must be known (40096).
func (s *Server) handleUpgradeService(c *call) result {
	var req upgradeReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	switch req.Type {
	case 1:
		if req.Member == nil || req.Member.UserID == "" {
			return fail(CodeInvalidParameter, "invalid parameter: member.userid required for type 1")
		}
	case 2:
		if req.GroupChat == nil || req.GroupChat.ChatID == "" {
			return fail(CodeInvalidParameter, "invalid parameter: groupchat.chat_id required for type 2")
		}
	default:
		return fail(CodeInvalidParameter, "invalid parameter: type must be 1 (member) or 2 (groupchat)")
	}
	return s.upgradeTarget(req.OpenKfID, req.ExternalUserID)
}

// handleCancelUpgrade is POST kf/customer/cancel_upgrade_service {open_kfid, external_userid} (§8).
func (s *Server) handleCancelUpgrade(c *call) result {
	var req stateGetReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	return s.upgradeTarget(req.OpenKfID, req.ExternalUserID)
}

func (s *Server) upgradeTarget(openKfID, user string) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.accountForLocked(openKfID); e != nil {
		return failErr(e)
	}
	if user == "" || s.customers[user] == nil {
		return fail(CodeInvalidExternalUserID, "invalid external_userid")
	}
	return result{}
}

// statisticZone is the time zone of WeCom's day boundaries (Beijing time, UTC+8).
func statisticZone() *time.Location { return time.FixedZone("CST", 8*3600) }

type statisticReq struct {
	OpenKfID       string `json:"open_kfid"`
	ServicerUserID string `json:"servicer_userid"`
	StartTime      *int64 `json:"start_time"`
	EndTime        *int64 `json:"end_time"`
}

type statisticItem struct {
	StatTime  int64          `json:"stat_time"`
	Statistic map[string]any `json:"statistic"`
}

type statisticResp struct {
	okBody
	StatisticList []statisticItem `json:"statistic_list"`
}

// checkStatisticWindow: start and end are midnights (Beijing time), start ≤ end, at most 31 days,
// not after yesterday, not before 180 days ago (§8, doc 95489).
func checkStatisticWindow(req *statisticReq, now time.Time) *apiError {
	if req.StartTime == nil || req.EndTime == nil {
		return errf(CodeInvalidParameter, "invalid parameter: start_time and end_time required")
	}
	start, end := time.Unix(*req.StartTime, 0).In(statisticZone()), time.Unix(*req.EndTime, 0).In(statisticZone())
	isMidnight := func(t time.Time) bool { return t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 }
	today := midnight(now)
	switch {
	case !isMidnight(start) || !isMidnight(end):
		return errf(CodeInvalidParameter, "invalid parameter: start_time and end_time must be midnight timestamps")
	case end.Before(start):
		return errf(CodeInvalidParameter, "invalid parameter: end_time before start_time")
	case int(end.Sub(start)/(24*time.Hour))+1 > MaxStatisticDays:
		return errf(CodeInvalidParameter, "invalid parameter: at most 31 days per call")
	case !end.Before(today):
		return errf(CodeInvalidParameter, "invalid parameter: end_time must be yesterday or earlier")
	case start.Before(today.Add(-StatisticHistory)):
		return errf(CodeInvalidParameter, "invalid parameter: start_time more than 180 days ago")
	}
	return nil
}

func midnight(t time.Time) time.Time {
	z := statisticZone()
	t = t.In(z)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, z)
}

// handleCorpStatistic is POST kf/get_corp_statistic {open_kfid, start_time, end_time} (§8): one item
// per day with counts computed from the stored messages (customer_msg_cnt, customer_cnt,
// session_cnt) and zeros for the rest.
func (s *Server) handleCorpStatistic(c *call) result { return s.statistic(c, false) }

// handleServicerStatistic is POST kf/get_servicer_statistic (+ servicer_userid, optional) (§8).
func (s *Server) handleServicerStatistic(c *call) result { return s.statistic(c, true) }

func (s *Server) statistic(c *call, perServicer bool) result {
	var req statisticReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	acc, e := s.accountForLocked(req.OpenKfID)
	if e != nil {
		return failErr(e)
	}
	if perServicer && req.ServicerUserID != "" && acc.servicers[req.ServicerUserID] == nil {
		return fail(CodeNotServicer, "servicer_userid is not a servicer of this account")
	}
	if e := checkStatisticWindow(&req, c.now); e != nil {
		return failErr(e)
	}
	resp := statisticResp{okBody: okay(), StatisticList: []statisticItem{}}
	for day := time.Unix(*req.StartTime, 0); !day.After(time.Unix(*req.EndTime, 0)); day = day.Add(24 * time.Hour) {
		msgs, users := 0, map[string]bool{}
		for _, m := range acc.msgs {
			if m.sendTime.Before(day) || !m.sendTime.Before(day.Add(24*time.Hour)) {
				continue
			}
			if perServicer {
				if m.origin == OriginServicer && (req.ServicerUserID == "" || m.servicer == req.ServicerUserID) {
					msgs++
					users[m.user] = true
				}
			} else if m.origin == OriginCustomer {
				msgs++
				users[m.user] = true
			}
		}
		st := map[string]any{"session_cnt": len(users), "customer_cnt": len(users), "customer_msg_cnt": msgs,
			"upgrade_service_customer_cnt": 0, "ai_session_reply_cnt": 0, "ai_transfer_rate": 0,
			"ai_knowledge_hit_rate": 0, "msg_rejected_customer_cnt": 0}
		if perServicer {
			st = map[string]any{"session_cnt": len(users), "customer_cnt": len(users), "customer_msg_cnt": 0,
				"reply_rate": 0, "first_reply_average_sec": 0, "satisfaction_investgate_cnt": 0,
				"satisfaction_participation_rate": 0, "satisfied_rate": 0, "middling_rate": 0, "dissatisfied_rate": 0,
				"upgrade_service_customer_cnt": 0, "upgrade_service_member_invite_cnt": 0,
				"upgrade_service_member_customer_cnt": 0, "upgrade_service_groupchat_invite_cnt": 0,
				"upgrade_service_groupchat_customer_cnt": 0, "msg_rejected_customer_cnt": 0,
				"servicer_msg_cnt": msgs}
		}
		resp.StatisticList = append(resp.StatisticList, statisticItem{StatTime: day.Unix(), Statistic: st})
	}
	return result{v: resp}
}
