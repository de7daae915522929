package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/media"
)

const accountsSynopsis = `accounts [list] [--json]
       wxkf accounts add NAME --avatar IMAGE
       wxkf accounts rename OPEN_KFID NAME
       wxkf accounts avatar OPEN_KFID IMAGE
       wxkf accounts delete OPEN_KFID --yes

Manages the customer-service accounts (客服账号, kf/account/*). A name has at most 16
characters. IMAGE is any JPEG, PNG, GIF, WebP, BMP or TIFF file: it is fitted to a JPEG or PNG
WeCom accepts and uploaded. Accounts added here are managed by this app at once; others must be
given to it in the WeCom admin (` + enKfManaged + `).`

// accounts lists, adds, renames and deletes accounts, and sets their avatar.
func accounts(ctx context.Context, t *term, args []string) int {
	fs := flags(t, "accounts", accountsSynopsis)
	var cf configFlags
	cf.add(fs)
	avatar := fs.String("avatar", "", "add: the avatar image file")
	yes := fs.Bool("yes", false, "delete: confirm that the account and its link go away for good")
	asJSON := fs.Bool("json", false, "list: print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return parseStatus(err)
	}
	verb := "list"
	if len(pos) > 0 {
		verb, pos = pos[0], pos[1:]
	}
	want := map[string]int{"list": 0, "add": 1, "rename": 2, "avatar": 2, "delete": 1}
	n, ok := want[verb]
	if !ok {
		return usageError(t, fs, "unknown action %q (list, add, rename, avatar, delete)", verb)
	}
	if len(pos) != n {
		return usageError(t, fs, "%s takes %s", verb, plural(n, "argument", "arguments"))
	}
	switch {
	case verb == "add" && *avatar == "":
		return usageError(t, fs, "add needs --avatar IMAGE: WeCom requires an avatar for a new account")
	case verb == "delete" && !*yes:
		return usageError(t, fs, "deleting %s cannot be undone: add --yes", pos[0])
	}
	ctx, cancel, cl := cf.connect(ctx, t)
	defer cancel()
	if cl == nil {
		return exitFail
	}

	switch verb {
	case "list":
		return listAccounts(ctx, t, cl, *asJSON)
	case "add":
		mediaID, ok := uploadAvatar(ctx, t, cl, *avatar)
		if !ok {
			return exitFail
		}
		id, err := cl.AddAccount(ctx, pos[0], mediaID)
		if err != nil {
			return failed(t, "add "+pos[0], err)
		}
		t.printf("%s added %s  %s\n", t.paint(green, markOK), pos[0], id)
	case "rename":
		if err := cl.UpdateAccount(ctx, kf.UpdateAccountRequest{OpenKfID: pos[0], Name: pos[1]}); err != nil {
			return failed(t, "rename "+pos[0], err)
		}
		t.printf("%s renamed %s to %s\n", t.paint(green, markOK), pos[0], pos[1])
	case "avatar":
		mediaID, ok := uploadAvatar(ctx, t, cl, pos[1])
		if !ok {
			return exitFail
		}
		if err := cl.UpdateAccount(ctx, kf.UpdateAccountRequest{OpenKfID: pos[0], MediaID: mediaID}); err != nil {
			return failed(t, "set the avatar of "+pos[0], err)
		}
		t.printf("%s set the avatar of %s\n", t.paint(green, markOK), pos[0])
	case "delete":
		if err := cl.DeleteAccount(ctx, pos[0]); err != nil {
			return failed(t, "delete "+pos[0], err)
		}
		t.printf("%s deleted %s\n", t.paint(green, markOK), pos[0])
	}
	return exitOK
}

// listAccounts prints every account the app sees.
func listAccounts(ctx context.Context, t *term, cl *kf.Client, asJSON bool) int {
	all, err := cl.AllAccounts(ctx)
	if err != nil {
		return failed(t, "list", err)
	}
	if asJSON {
		out := make([]accountJSON, 0, len(all))
		for _, a := range all {
			out = append(out, accountJSON{OpenKfID: a.OpenKfID, Name: a.Name, Managed: a.ManagePrivilege})
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		t.printf("%s\n", b)
		return exitOK
	}
	if len(all) == 0 {
		t.fail("this app sees no customer-service account", noAccountHint)
		return exitFail
	}
	for _, l := range accountLines(all) {
		t.printf("%s\n", l)
	}
	return exitOK
}

// uploadAvatar fits an image file to what WeCom accepts (media.FitImage) and uploads it.
func uploadAvatar(ctx context.Context, t *term, cl *kf.Client, path string) (string, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.fail(err.Error(), nil)
		return "", false
	}
	img, format, err := media.FitImage(data, media.MaxImageBytes)
	if err != nil {
		t.fail(fmt.Sprintf("%s: %v", path, err), &hint{
			EN: "Use a JPEG, PNG, GIF, WebP, BMP or TIFF image.",
			ZH: "请使用 JPEG、PNG、GIF、WebP、BMP 或 TIFF 格式的图片。",
		})
		return "", false
	}
	name := "avatar.jpg"
	if format == media.ImageFormatPNG {
		name = "avatar.png"
	}
	up, err := cl.UploadMedia(ctx, media.KindImage, name, bytes.NewReader(img))
	if err != nil {
		failed(t, "upload "+path, err)
		return "", false
	}
	return up.MediaID, true
}

// failed prints a failed call plainly and returns exitFail.
func failed(t *term, what string, err error) int {
	summary, fix := explain(err)
	t.fail(what+": "+summary, fix)
	return exitFail
}
