// Package cursor keeps what the wxkf sync engine must not lose: each account's sync_msg cursor ([Store]), a
// lease per account so one process pulls it at a time ([Locker]), and the msgids already handled ([Dedup]).
// [OpenDir] is the embedded default (files compatible with chatgpt-on-wechat), [NewMemory] is for tests, and
// package cursor/redis shares the same interfaces between replicas.
//
//	d, err := cursor.OpenDir("/var/lib/mybot") // wechatcom_kf_cursors.json + a done-journal, flocked
//	if err != nil { return err }
//	defer d.Close()
//	cur, err := d.Load(ctx, openKfID) // ("", nil): none yet; an error is never "none"
package cursor
