package main

import (
	"context"
	"path/filepath"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/wxkf/wxkf/kf"
)

const linkSynopsis = `link [--kf OPEN_KFID] [--scene S] [--scene-param P] [--png FILE] [--invert] [--no-qr]

Prints each account's contact link (kf/add_contact_way) and draws it as a QR code: a WeChat
user who opens the link or scans the code enters a chat with the account. --scene (≤ 32 bytes of
[0-9a-zA-Z_-]) and --scene-param (≤ 128 bytes) come back in the enter_session event, so the bot
can tell where the customer came from. --png writes the code as an image; with several accounts,
each image's name gets the account's open_kfid.`

// qrPNGSize is the side of the PNG in pixels: sharp when printed, easy to scan from a screen.
const qrPNGSize = 512

// link prints the contact link of each account (or of one) with its QR code.
func link(ctx context.Context, t *term, args []string) int {
	fs := flags(t, "link", linkSynopsis)
	var cf configFlags
	cf.add(fs)
	openKfID := fs.String("kf", "", "only this account (open_kfid)")
	scene := fs.String("scene", "", "scene value reported in enter_session (≤ 32 bytes of [0-9a-zA-Z_-])")
	sceneParam := fs.String("scene-param", "", "scene_param appended to the link (≤ 128 bytes), reported in enter_session")
	pngPath := fs.String("png", "", "write the QR code to this PNG file")
	invert := fs.Bool("invert", false, "draw the terminal QR code for a light background")
	noQR := fs.Bool("no-qr", false, "print the links only")
	if status, ok := parseFlagsOnly(t, fs, args); !ok {
		return status
	}
	ctx, cancel, cl := cf.connect(ctx, t)
	defer cancel()
	if cl == nil {
		return exitFail
	}

	var targets []kf.Account
	if *openKfID != "" {
		a, ok := pickAccount(ctx, t, cl, *openKfID)
		if !ok {
			return exitFail
		}
		targets = []kf.Account{a}
	} else {
		_, managed, err := managedAccounts(ctx, cl)
		if err != nil {
			t.fail(explain(err))
			return exitFail
		}
		if len(managed) == 0 {
			t.fail("this app manages no customer-service account", noAccountHint)
			return exitFail
		}
		targets = managed
	}

	for i, a := range targets {
		u, err := cl.AddContactWay(ctx, a.OpenKfID, *scene)
		if err == nil && *sceneParam != "" {
			u, err = kf.AppendSceneParam(u, *sceneParam)
		}
		if err != nil {
			summary, fix := explain(err)
			t.fail(a.Name+" "+a.OpenKfID+": "+summary, fix)
			return exitFail
		}
		if i > 0 {
			t.printf("\n")
		}
		t.printf("%s  %s\n%s\n", t.paint(bold, a.Name), t.paint(dim, a.OpenKfID), u)
		q, err := qrcode.New(u, qrcode.Medium)
		if err != nil {
			t.fail("cannot draw the QR code: "+err.Error(), nil)
			return exitFail
		}
		if !*noQR {
			t.printf("\n%s", q.ToSmallString(*invert))
		}
		if *pngPath != "" {
			path := *pngPath
			if len(targets) > 1 {
				path = pngPathFor(path, a.OpenKfID)
			}
			if err := q.WriteFile(qrPNGSize, path); err != nil {
				t.fail("cannot write the QR code: "+err.Error(), nil)
				return exitFail
			}
			t.printf("QR code written to %s\n", path)
		}
	}
	return exitOK
}

// pngPathFor names one account's image when several are written: qr.png → qr-wk….png.
func pngPathFor(path, openKfID string) string {
	ext := filepath.Ext(path)
	if ext == "" {
		ext = ".png"
	}
	return strings.TrimSuffix(path, filepath.Ext(path)) + "-" + openKfID + ext
}
