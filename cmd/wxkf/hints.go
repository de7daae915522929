package main

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/wxkf/wxkf/kf"
)

// hint is the fix for a failure, in English and in Chinese. Menu paths are named as the WeCom
// admin console (企业微信管理后台, work.weixin.qq.com) shows them, in Chinese in both languages.
type hint struct {
	EN string `json:"en"`
	ZH string `json:"zh"`
}

// Where things are in the WeCom admin console. The kf paths are those the official API pages
// name in their permission notes (doc 94661, 96404); "your app" is the self-built app whose secret
// wxkf uses.
const (
	enCorpID    = "我的企业 → 企业信息 → 企业ID (at the bottom of the page)"
	zhCorpID    = "「我的企业」→「企业信息」页面最下方的「企业ID」"
	enSecret    = "应用管理 → 应用 → your app → Secret → 查看 (WeCom sends it to the admin's phone)"
	zhSecret    = "「应用管理」→「应用」→ 你的自建应用 →「Secret」→「查看」（发送到管理员手机企业微信上查看）"
	enCallback  = "应用管理 → 应用 → your app → 接收消息 → 设置API接收"
	zhCallback  = "「应用管理」→「应用」→ 你的自建应用 →「接收消息」→「设置API接收」"
	enTrustedIP = "应用管理 → 应用 → your app → 企业可信IP (at the bottom of the page) → 配置"
	zhTrustedIP = "「应用管理」→「应用」→ 你的自建应用 → 页面底部「企业可信IP」→「配置」"
	enKfApps    = "微信客服 → 可调用接口的应用"
	zhKfApps    = "「微信客服」→「可调用接口的应用」"
	enKfManaged = "通过API管理会话消息 → 企业内部开发 → your app → 可管理的客服账号"
	zhKfManaged = "「通过API管理会话消息」→「企业内部开发」→ 你的自建应用 →「可管理的客服账号」"
	enKfAPI     = "微信客服 → 通过API管理微信客服账号"
	zhKfAPI     = "「微信客服」→「通过API管理微信客服账号」"
)

// fromIP finds the caller's IP in a 60020 errmsg ("not allow to access from your ip, hint: [...],
// from ip: 203.0.113.7, more info at ...").
var fromIP = regexp.MustCompile(`from ip:\s*([0-9A-Fa-f:.]+)`)

// reportedIP returns the IP WeCom names in errmsg, or "" when it names none.
func reportedIP(errmsg string) string {
	m := fromIP.FindStringSubmatch(errmsg)
	if m == nil {
		return ""
	}
	ip := strings.TrimRight(m[1], ".:")
	if net.ParseIP(ip) == nil {
		return ""
	}
	return ip
}

// explain turns an error of package kf into one plain line and the fix, if one is known.
func explain(err error) (summary string, fix *hint) {
	var re *kf.ReplyError
	var ae *kf.APIError
	var he *kf.HTTPError
	var qe *kf.RequestError
	switch {
	case errors.As(err, &re):
		return explainReply(re)
	case errors.As(err, &ae):
		return explainAPI(ae)
	case errors.As(err, &he):
		return fmt.Sprintf("%s %s answered HTTP %d, not WeCom's JSON", he.Method, he.Path, he.StatusCode),
			&hint{
				EN: "A proxy or an outage stands between this server and WeCom. Check wechatcom_kf_api_base and any HTTP proxy, then try again.",
				ZH: "本服务器与企业微信之间的代理或网络出现问题。请检查 wechatcom_kf_api_base 和 HTTP 代理设置后重试。",
			}
	case errors.As(err, &qe):
		return fmt.Sprintf("cannot reach the WeCom API (%s): %v", qe.Path, qe.Err),
			&hint{
				EN: "Check this server's network, DNS and proxy (HTTPS_PROXY), and wechatcom_kf_api_base.",
				ZH: "请检查本服务器的网络、DNS 和代理（HTTPS_PROXY）设置，以及 wechatcom_kf_api_base。",
			}
	}
	return err.Error(), nil
}

// explainAPI explains a WeCom errcode (global error code page, doc 90313).
func explainAPI(e *kf.APIError) (string, *hint) {
	switch e.Code {
	case 40001:
		return "WeCom rejected the secret (40001)", &hint{
			EN: "wechatcom_kf_secret is wrong. Use the secret of the self-built app that calls the WeChat Customer Service API: " +
				enSecret + ". Copy all of it. Don't retry in a loop: repeated wrong secrets get this IP blocked for an hour.",
			ZH: "wechatcom_kf_secret 不正确。请使用调用微信客服接口的自建应用的 Secret：" + zhSecret +
				"。请完整复制。不要反复重试：多次使用错误的 Secret 会使本 IP 被封禁一小时。",
		}
	case 40013:
		return "WeCom does not know this corp id (40013)", &hint{
			EN: "wechatcom_corp_id is wrong. Copy it from " + enCorpID + ".",
			ZH: "wechatcom_corp_id 不正确。请从" + zhCorpID + "复制。",
		}
	case 60020:
		ip := reportedIP(e.Msg)
		if ip == "" {
			return "WeCom refuses calls from this server's IP (60020)", &hint{
				EN: "Add this server's public IP to the app's trusted IPs: " + enTrustedIP +
					". It takes effect about a minute later. If the console asks, set the callback URL first (" + enCallback + ").",
				ZH: "请在" + zhTrustedIP + "中加入本服务器的公网 IP，约 1 分钟后生效。如后台提示，请先在" + zhCallback + "中设置回调 URL。",
			}
		}
		return fmt.Sprintf("WeCom refuses calls from this server's IP %s (60020)", ip), &hint{
			EN: "Add " + ip + " to the app's trusted IPs: " + enTrustedIP +
				". It takes effect about a minute later. If the console asks, set the callback URL first (" + enCallback + ").",
			ZH: "请在" + zhTrustedIP + "中加入 " + ip + "，约 1 分钟后生效。如后台提示，请先在" + zhCallback + "中设置回调 URL。",
		}
	case 95011:
		return "edition mismatch: this corp uses 微信客服 inside WeCom (95011)", &hint{
			EN: "The call came as for the standalone 微信客服 admin. Use the corp id and the secret of a self-built WeCom app (" +
				enSecret + "), and add that app under " + enKfApps + ".",
			ZH: "本次调用使用的是独立版微信客服的身份。请使用企业微信的企业ID和自建应用的 Secret（" + zhSecret + "），并在" +
				zhKfApps + "中添加该应用。",
		}
	case 95012:
		return "edition mismatch: this corp uses 微信客服 outside WeCom (95012)", &hint{
			EN: "Either start using WeChat Customer Service in the WeCom admin (微信客服) and add your self-built app under " +
				enKfApps + ", or use the corp id and secret of the standalone 微信客服 admin (开发配置).",
			ZH: "请在企业微信管理后台启用「微信客服」并在" + zhKfApps + "中添加你的自建应用，或改用独立版微信客服管理后台「开发配置」中的企业ID和 Secret。",
		}
	case 48002:
		return "this app may not call the WeChat Customer Service API (48002)", &hint{
			EN: "Add the app under " + enKfApps + ", then give it at least one account: " + enKfManaged +
				". Since 2023-12-01 a system app's secret no longer works for this; use a self-built app's.",
			ZH: "请在" + zhKfApps + "中添加该应用，并在" + zhKfManaged + "中至少选择一个客服账号。自 2023-12-01 起不再支持用系统应用的 Secret 调用，请使用自建应用的 Secret。",
		}
	case 95017:
		return "the WeChat Customer Service API is switched off (95017)", &hint{
			EN: "Turn it on: " + enKfAPI + ", and let your app manage the accounts (" + enKfManaged + ").",
			ZH: "请在" + zhKfAPI + "中开启，并在" + zhKfManaged + "中为你的自建应用选择客服账号。",
		}
	case 95000, 95004:
		return fmt.Sprintf("WeCom does not know this open_kfid (%d)", e.Code), &hint{
			EN: "Use an open_kfid that wxkf accounts lists (it starts with wk).",
			ZH: "请使用 wxkf accounts 列出的 open_kfid（以 wk 开头）。",
		}
	case 40096:
		return "WeCom does not know this external_userid (40096)", &hint{
			EN: "Use the external_userid of a customer who wrote to this account (it starts with wm); your bot logs it with each message.",
			ZH: "请使用给该客服账号发过消息的客户的 external_userid（以 wm 开头），机器人处理消息时会记录它。",
		}
	case 95018:
		return "the session does not allow the API to send now (95018)", &hint{
			EN: "The API may send only while the session is new or with the bot (state 0 or 1), within 48 h of the customer's last message. " +
				"Wait for the customer to write, or end the human servicer's session in the WeCom client.",
			ZH: "仅当会话处于未处理或由智能助手接待（状态 0 或 1）且在客户最后一条消息后 48 小时内时才能通过接口发送。请等待客户发消息，或在企业微信客户端结束人工接待。",
		}
	}
	s := fmt.Sprintf("WeCom answered errcode %d", e.Code)
	if d := e.Description(); d != "" {
		s += " (" + d + ")"
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s, &hint{
		EN: fmt.Sprintf("Look the code up in WeCom's error code tool: https://open.work.weixin.qq.com/devtool/query?e=%d", e.Code),
		ZH: fmt.Sprintf("请在企业微信错误码查询工具中查询：https://open.work.weixin.qq.com/devtool/query?e=%d", e.Code),
	}
}

// explainReply explains why WeCom's rules stopped a send (doc 94677, 94698).
func explainReply(e *kf.ReplyError) (string, *hint) {
	tally := fmt.Sprintf("sent %d, not sent %d", e.Sent, e.Dropped)
	waitEN := "Wait for the customer to write again: each customer message allows 5 more within 48 h."
	waitZH := "请等待客户再次发消息：客户每发一条消息，48 小时内可再发送 5 条。"
	switch {
	case errors.Is(e.Reason, kf.ErrQuotaExceeded):
		return "the 5 messages WeCom allows after the customer's last message are used (95001); " + tally,
			&hint{EN: waitEN, ZH: waitZH}
	case errors.Is(e.Reason, kf.ErrSessionExpired):
		return "more than 48 h since the customer's last message (95002); " + tally,
			&hint{EN: waitEN, ZH: waitZH}
	case errors.Is(e.Reason, kf.ErrHumanServicer):
		return "a human servicer has the session (state 3); " + tally, &hint{
			EN: "The API may not send while a person serves the customer. End or transfer the session in the WeCom client first.",
			ZH: "人工接待期间不能通过接口发送。请先在企业微信客户端结束或转接会话。",
		}
	case errors.Is(e.Reason, kf.ErrSessionQueued):
		return "the session waits for a human servicer (state 2); " + tally, &hint{
			EN: "The API may not send while the customer waits in the queue. Take the session in the WeCom client, or end it.",
			ZH: "客户在待接入池排队期间不能通过接口发送。请在企业微信客户端接入或结束该会话。",
		}
	case errors.Is(e.Reason, kf.ErrSessionEnded):
		return "the session has ended (state 4); " + tally, &hint{EN: waitEN, ZH: waitZH}
	}
	return e.Error(), nil
}
