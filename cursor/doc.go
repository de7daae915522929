// Package cursor keeps what the wxkf sync engine must not lose: each account's sync_msg cursor ([Store]), a
// lease per account so one process pulls it at a time ([Locker]), the msgids already handled ([Dedup]), and,
// together as a [State], per-account metadata and the reply records that let a rerun finish a cut reply.
// [OpenDir] is the embedded default (files compatible with chatgpt-on-wechat), [NewMemory] is for tests, and
// package cursor/redis shares the same interfaces between replicas.
//
//	d, err := cursor.OpenDir("/var/lib/mybot") // wechatcom_kf_cursors.json + a done-journal, flocked
//	if err != nil { return err }
//	defer d.Close()
//	cur, err := d.Load(ctx, openKfID) // ("", nil): none yet; an error is never "none"
//
// # Fencing
//
// A holder of an account's lease can stall past the lease's ttl (a GC pause, SIGSTOP, an unreachable Redis)
// while another process takes the account over. Checking [Lease.Err] before a write cannot stop such a
// holder: it may stall between the check and the write. So every write the sync engine makes goes through
// its lease ([Lease.Save], [Lease.SetMeta], [Lease.MarkDone], [Lease.PutReply]), and the store makes the
// check and the write one atomic step: a lease that was lost, taken over, expired or released writes nothing
// and gets an error wrapping [ErrLeaseLost] (or [ErrReleased]). [Lease.Err] also compares the lease's
// deadline with the holder's own clock, so a process resuming from a pause sees the loss at its first check,
// before its renewer has run. [Lease.Token] numbers the holdings of a key, for logs and metrics.
//
// # Reply records and metadata
//
// Before a handler's reply is sent, the engine stores it as a reply record ([Lease.PutReply]); a rerun of
// the handler (a retry, a replay after a crash, another replica after a failover) reads it back with
// [State.Lookup] and finishes that reply instead of sending a different one. [Lease.MarkDone] deletes the
// records of the msgids it marks, and a record also expires with the retention, like a done mark. Metadata
// ([Lease.SetMeta], [State.LoadMeta]) holds small per-account values, such as kf's skip-history boundary
// ("history_before"). [State.Accounts] lists every account with a cursor or metadata, so that a restarted
// Channel pulls each of them and no acknowledged callback is stranded.
//
// # What each store guarantees
//
//   - [Memory]: everything in process memory, lost with the process. Leases are between goroutines; a fenced
//     write is checked and made under the one mutex that orders every write.
//   - [Dir]: one process (the directory is flocked). A cursor or metadata write returns once the cursor file
//     was rewritten atomically and fsynced; a done mark once its journal line is fsynced (group commit;
//     [WithJournalSync](false) trades that for speed); a reply record once its journal line is written to
//     the operating system, without waiting for the disk (it survives a process crash, not a power loss). Leases are between goroutines of the
//     process; a fenced write is checked under the lock that orders writes of its kind, so a write that
//     passed its check just before a takeover lands before the new holder's first write of that kind, never
//     after it. A journal damaged by a crash or a power loss (a torn last line, lines of NUL bytes) is
//     repaired on open; one that cannot be decoded is [ErrCorrupt], never read as empty.
//   - cursor/redis: several replicas on one Redis (single node, failover or Cluster). A fenced write is a
//     Lua script that writes only while the lease key holds this holding's value. Durability is the
//     server's: configure AOF (appendfsync everysec or always) if a Redis restart must not lose the last
//     writes.
//
// Every implementation passes the conformance suite in package cursor/cursortest.
package cursor
