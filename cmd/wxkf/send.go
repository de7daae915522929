package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/media"
)

const sendSynopsis = `send --to EXTERNAL_USERID [--kf OPEN_KFID] TEXT

Sends TEXT to a customer from an account, for an operator's quick check, within WeCom's rules:
only while the session is new or with the bot (not with a human servicer, queued or ended), and
within 48 h of the customer's last message, at most 5 messages after it. A text over 2048 bytes
goes out in several messages. --kf may be left out when the app manages one account.`

// maxSendParts is how many messages WeCom allows after a customer's message (doc 94677).
const maxSendParts = 5

// send sends a text to one customer and reports what WeCom's rules stopped, plainly.
func send(ctx context.Context, t *term, args []string) int {
	fs := flags(t, "send", sendSynopsis)
	var cf configFlags
	cf.add(fs)
	to := fs.String("to", "", "the customer's external_userid (wm…)")
	openKfID := fs.String("kf", "", "the account that sends (open_kfid, wk…)")
	pos, err := parse(fs, args)
	if err != nil {
		return parseStatus(err)
	}
	text := joinArgs(pos)
	switch {
	case *to == "":
		return usageError(t, fs, "--to EXTERNAL_USERID is required")
	case text == "":
		return usageError(t, fs, "nothing to send: give the TEXT")
	}
	parts := media.SplitText(text, media.MaxTextBytes)
	if len(parts) > maxSendParts {
		return usageError(t, fs, "the text needs %d messages; WeCom allows %d after the customer's last message", len(parts), maxSendParts)
	}
	ctx, cancel, cl := cf.connect(ctx, t)
	defer cancel()
	if cl == nil {
		return exitFail
	}
	acct, ok := pickAccount(ctx, t, cl, *openKfID)
	if !ok {
		return exitFail
	}
	if err := sendText(ctx, cl, acct.OpenKfID, *to, parts); err != nil {
		return failed(t, fmt.Sprintf("send to %s from %s", *to, acct.Name), err)
	}
	t.printf("%s sent to %s from %s (%s): %s\n", t.paint(green, markOK), *to, acct.Name, acct.OpenKfID,
		plural(len(parts), "message", "messages"))
	return exitOK
}

// sendText checks the session state (doc 94698) and sends the parts in order, each with a fresh client
// msgid so that the client may retry it safely. When WeCom's rules stop it, the error is a
// *kf.ReplyError saying what was sent and what was not, as a bot's Replier would report it.
func sendText(ctx context.Context, cl *kf.Client, openKfID, to string, parts []string) error {
	st, err := cl.GetServiceState(ctx, openKfID, to)
	if err != nil {
		return err
	}
	var reason error
	switch st.State {
	case kf.ServiceStateServicer:
		reason = kf.ErrHumanServicer
	case kf.ServiceStateQueued:
		reason = kf.ErrSessionQueued
	case kf.ServiceStateEnded:
		reason = kf.ErrSessionEnded
	}
	if reason != nil {
		return &kf.ReplyError{Reason: reason, Dropped: len(parts)}
	}
	for i, p := range parts {
		_, err := cl.SendMsg(ctx, kf.SendMsgRequest{ToUser: to, OpenKfID: openKfID, MsgID: newMsgID(), Content: kf.NewText(p)})
		if err == nil {
			continue
		}
		switch kf.ErrorCode(err) {
		case 95001:
			reason = kf.ErrQuotaExceeded
		case 95002:
			reason = kf.ErrSessionExpired
		case 95013:
			reason = kf.ErrSessionEnded
		}
		if reason != nil {
			return &kf.ReplyError{Reason: reason, Sent: i, Dropped: len(parts) - i, Err: err}
		}
		if i > 0 {
			return fmt.Errorf("sent %d of %d messages: %w", i, len(parts), err)
		}
		return err
	}
	return nil
}

// newMsgID is a client msgid (≤ 32 bytes of [0-9a-zA-Z_-], unique within the account, doc 94677).
func newMsgID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "wxkf-cli-" + hex.EncodeToString(b[:])
}
