package kf

import (
	"context"
	"time"
)

// UpgradeServiceConfig is the reply of customer/get_upgrade_service_config (§8,
// doc 94674): the members and group chats a customer may be upgraded to.
type UpgradeServiceConfig struct {
	MemberRange struct {
		UserIDs       []string `json:"userid_list"`
		DepartmentIDs []int64  `json:"department_id_list"`
	} `json:"member_range"`
	GroupChatRange struct {
		ChatIDs []string `json:"chat_id_list"`
	} `json:"groupchat_range"`
}

type upgradeConfigReply struct {
	apiStatus
	UpgradeServiceConfig
}

// GetUpgradeServiceConfig returns the upgrade service configuration (GET
// cgi-bin/kf/customer/get_upgrade_service_config, §8).
func (c *Client) GetUpgradeServiceConfig(ctx context.Context) (*UpgradeServiceConfig, error) {
	var out upgradeConfigReply
	if err := c.call(ctx, &request{method: methodGet, path: pathGetUpgradeServiceConfig, retry: retryIdempotent}, &out); err != nil {
		return nil, err
	}
	return &out.UpgradeServiceConfig, nil
}

// UpgradeType is what a customer is upgraded to (§8).
type UpgradeType int

// Upgrade types.
const (
	UpgradeToMember    UpgradeType = 1 // a WeCom member (专员服务)
	UpgradeToGroupChat UpgradeType = 2 // a customer group chat (客户群)
)

// UpgradeMember recommends a member to the customer; Wording is the recommendation text.
type UpgradeMember struct {
	UserID  string `json:"userid"`
	Wording string `json:"wording,omitempty"`
}

// UpgradeGroupChat recommends a group chat to the customer; Wording is the recommendation text.
type UpgradeGroupChat struct {
	ChatID  string `json:"chat_id"`
	Wording string `json:"wording,omitempty"`
}

// UpgradeServiceRequest is the body of customer/upgrade_service (§8). Set Member or GroupChat;
// Type is inferred from which is set when zero.
type UpgradeServiceRequest struct {
	OpenKfID       string            `json:"open_kfid"`
	ExternalUserID string            `json:"external_userid"`
	Type           UpgradeType       `json:"type"`
	Member         *UpgradeMember    `json:"member,omitempty"`
	GroupChat      *UpgradeGroupChat `json:"groupchat,omitempty"`
}

func (r *UpgradeServiceRequest) normalize() error {
	if err := (sessionRef{r.OpenKfID, r.ExternalUserID}).validate("customer/upgrade_service"); err != nil {
		return err
	}
	if r.Type == 0 {
		switch {
		case r.Member != nil && r.GroupChat == nil:
			r.Type = UpgradeToMember
		case r.GroupChat != nil && r.Member == nil:
			r.Type = UpgradeToGroupChat
		}
	}
	switch r.Type {
	case UpgradeToMember:
		if r.Member == nil || r.Member.UserID == "" || r.GroupChat != nil {
			return invalidf("customer/upgrade_service: type 1 needs member.userid and no groupchat")
		}
	case UpgradeToGroupChat:
		if r.GroupChat == nil || r.GroupChat.ChatID == "" || r.Member != nil {
			return invalidf("customer/upgrade_service: type 2 needs groupchat.chat_id and no member")
		}
	default:
		return invalidf("customer/upgrade_service: type %d is neither 1 (member) nor 2 (groupchat)", int(r.Type))
	}
	return nil
}

// UpgradeService recommends a member or a group chat to a customer (cgi-bin/kf/customer/upgrade_service,
// §8). Not retried on busy errors: it sends the customer a card.
func (c *Client) UpgradeService(ctx context.Context, req UpgradeServiceRequest) error {
	if err := req.normalize(); err != nil {
		return err
	}
	return c.call(ctx, &request{method: methodPost, path: pathUpgradeService, body: &req, retry: retryUnsafe}, nil)
}

// CancelUpgradeService withdraws a recommendation (cgi-bin/kf/customer/cancel_upgrade_service, §8).
func (c *Client) CancelUpgradeService(ctx context.Context, openKfID, externalUserID string) error {
	ref := sessionRef{openKfID, externalUserID}
	if err := ref.validate("customer/cancel_upgrade_service"); err != nil {
		return err
	}
	return c.call(ctx, &request{method: methodPost, path: pathCancelUpgradeService, body: ref, retry: retryIdempotent}, nil)
}

// StatisticRequest selects the statistics of a kf account — and for GetServicerStatistic
// optionally one servicer — for the days from StartTime to EndTime (§8: midnight timestamps, from
// yesterday back at most 180 days, at most 31 days per call; WeCom checks these).
type StatisticRequest struct {
	OpenKfID       string
	ServicerUserID string // GetServicerStatistic only; empty for all servicers
	StartTime      time.Time
	EndTime        time.Time
}

func (r *StatisticRequest) body(api string, servicer bool) (any, error) {
	switch {
	case r.OpenKfID == "":
		return nil, invalidf("%s: open_kfid is required", api)
	case r.StartTime.IsZero() || r.EndTime.IsZero():
		return nil, invalidf("%s: start and end time are required", api)
	case r.EndTime.Before(r.StartTime):
		return nil, invalidf("%s: end time %v before start time %v", api, r.EndTime, r.StartTime)
	case !servicer && r.ServicerUserID != "":
		return nil, invalidf("%s: servicer_userid is only for get_servicer_statistic", api)
	}
	return struct {
		OpenKfID       string `json:"open_kfid"`
		ServicerUserID string `json:"servicer_userid,omitempty"`
		StartTime      int64  `json:"start_time"`
		EndTime        int64  `json:"end_time"`
	}{r.OpenKfID, r.ServicerUserID, r.StartTime.Unix(), r.EndTime.Unix()}, nil
}

// CorpStatistic is one day of get_corp_statistic (§8, doc 95489).
type CorpStatistic struct {
	// StatTime is the day (its midnight).
	StatTime  time.Time
	Statistic CorpStatisticData
}

// CorpStatisticData holds a day's figures for a kf account (doc 95489).
type CorpStatisticData struct {
	SessionCount                int64   `json:"session_cnt"`
	CustomerCount               int64   `json:"customer_cnt"`
	CustomerMsgCount            int64   `json:"customer_msg_cnt"`
	UpgradeServiceCustomerCount int64   `json:"upgrade_service_customer_cnt"`
	AISessionReplyCount         int64   `json:"ai_session_reply_cnt"`
	AITransferRate              float64 `json:"ai_transfer_rate"`
	AIKnowledgeHitRate          float64 `json:"ai_knowledge_hit_rate"`
	MsgRejectedCustomerCount    int64   `json:"msg_rejected_customer_cnt"`
}

// ServicerStatistic is one day of get_servicer_statistic (§8, doc 95490).
type ServicerStatistic struct {
	StatTime  time.Time
	Statistic ServicerStatisticData
}

// ServicerStatisticData holds a day's figures for a servicer or all servicers (doc 95490).
type ServicerStatisticData struct {
	SessionCount                         int64   `json:"session_cnt"`
	CustomerCount                        int64   `json:"customer_cnt"`
	CustomerMsgCount                     int64   `json:"customer_msg_cnt"`
	ReplyRate                            float64 `json:"reply_rate"`
	FirstReplyAverageSec                 float64 `json:"first_reply_average_sec"`
	SatisfactionInvestigateCount         int64   `json:"satisfaction_investgate_cnt"`
	SatisfactionParticipationRate        float64 `json:"satisfaction_participation_rate"`
	SatisfiedRate                        float64 `json:"satisfied_rate"`
	MiddlingRate                         float64 `json:"middling_rate"`
	DissatisfiedRate                     float64 `json:"dissatisfied_rate"`
	UpgradeServiceCustomerCount          int64   `json:"upgrade_service_customer_cnt"`
	UpgradeServiceMemberInviteCount      int64   `json:"upgrade_service_member_invite_cnt"`
	UpgradeServiceMemberCustomerCount    int64   `json:"upgrade_service_member_customer_cnt"`
	UpgradeServiceGroupChatInviteCount   int64   `json:"upgrade_service_groupchat_invite_cnt"`
	UpgradeServiceGroupChatCustomerCount int64   `json:"upgrade_service_groupchat_customer_cnt"`
	MsgRejectedCustomerCount             int64   `json:"msg_rejected_customer_cnt"`
}

type statisticReply[T any] struct {
	apiStatus
	StatisticList []struct {
		StatTime  int64 `json:"stat_time"`
		Statistic T     `json:"statistic"`
	} `json:"statistic_list"`
}

// GetCorpStatistic returns a kf account's daily statistics (cgi-bin/kf/get_corp_statistic, §8).
func (c *Client) GetCorpStatistic(ctx context.Context, req StatisticRequest) ([]CorpStatistic, error) {
	body, err := req.body("get_corp_statistic", false)
	if err != nil {
		return nil, err
	}
	var out statisticReply[CorpStatisticData]
	if err := c.call(ctx, &request{method: methodPost, path: pathGetCorpStatistic, body: body, retry: retryIdempotent}, &out); err != nil {
		return nil, err
	}
	res := make([]CorpStatistic, len(out.StatisticList))
	for i, s := range out.StatisticList {
		res[i] = CorpStatistic{StatTime: unixTime(s.StatTime), Statistic: s.Statistic}
	}
	return res, nil
}

// GetServicerStatistic returns servicers' daily statistics (cgi-bin/kf/get_servicer_statistic, §8).
func (c *Client) GetServicerStatistic(ctx context.Context, req StatisticRequest) ([]ServicerStatistic, error) {
	body, err := req.body("get_servicer_statistic", true)
	if err != nil {
		return nil, err
	}
	var out statisticReply[ServicerStatisticData]
	if err := c.call(ctx, &request{method: methodPost, path: pathGetServicerStatistic, body: body, retry: retryIdempotent}, &out); err != nil {
		return nil, err
	}
	res := make([]ServicerStatistic, len(out.StatisticList))
	for i, s := range out.StatisticList {
		res[i] = ServicerStatistic{StatTime: unixTime(s.StatTime), Statistic: s.Statistic}
	}
	return res, nil
}
