// Package redis implements cursor.State on Redis (go-redis v9), plus a token store matching kf.TokenStore
// and a rate limiter store matching kf.RateStore, so that several replicas of a bot share cursors,
// per-account leases, done msgids, reply records, metadata, the access_token and each corp's API budget
// (doc 90454). A single node, a failover group and a Redis Cluster all work; the server must be
// Redis 6.2 or newer.
//
//	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"}) // or goredis.NewClusterClient
//	store := redis.New(client, redis.WithPrefix("mybot:"))
//	cur, err := store.Load(ctx, openKfID) // ("", nil): none yet; a Redis error is an error, never "none"
//
// # Keys
//
// All keys live under a prefix ([WithPrefix], default "wxkf:"). The keys of one account share the hash tag
// {<open_kfid>}, so on a Cluster they are in one slot and every script touches one slot only:
//
//	<prefix>{<open_kfid>}:cursor    string   the sync_msg cursor
//	<prefix>{<open_kfid>}:meta      hash     metadata name → value
//	<prefix>{<open_kfid>}:lease     string   "<token>:<random hex>" of the holder, PX ttl
//	<prefix>{<open_kfid>}:fence     integer  the last fencing token (INCR at each Lock that succeeds)
//	<prefix>{<open_kfid>}:done      zset     msgid → server time (ms) it was marked done
//	<prefix>{<open_kfid>}:reply     hash     msgid → "<unix ms put>:<reply record>"
//	<prefix>accounts                set      every open_kfid saved or written through a lease
//	<prefix>owed                    zset     open_kfid → server time (ms) a pull was marked owed (cursor.Owed)
//	<prefix>token:<key>             string   a cached access_token, with its TTL
//	<prefix>{<corpid>}:rate:<path>  hash     kf's rate limiter for a corp and API path (AdmitCalls, PauseCalls)
//
// Open_kfids, lease keys and the prefix must not contain '{' or '}'. The done set and the reply keys are
// trimmed by the server's clock and expire a little over a retention ([WithRetention], default 96 h; at
// most 20 s over) after their last done mark, so an idle account keeps only its cursor, metadata and fencing counter.
//
// # Fencing
//
// Lock is one script: if <prefix>{<key>}:lease does not exist, INCR the fence counter and SET the lease to
// "<token>:<random hex>" PX ttl (the script runs atomically, so the EXISTS check stands in for NX). Renewal (every ttl/3) and Release compare the whole value first. A write
// through the lease (Save, SetMeta, MarkDone, PutReply) is one script that checks that the lease still holds
// that value and only then writes; if not, it writes nothing, the lease ends with cursor.ErrLeaseLost and
// the write returns an error wrapping it. Since another replica can only take the key after it expired or
// was released, nothing written by a holding lands after its successor's first write. The holder also
// keeps a local deadline (ttl after the last renewal that succeeded was sent, by the monotonic clock), which
// is never later than Redis's own expiry: Err reports the loss once it has passed, and writes are then
// refused without a round trip. A MarkDone of more than 1000 msgids is one fenced script per 1000: if the
// lease is lost between two of them, the marks made before the loss stay.
//
// Before the first write of a holding, the lease adds its key to <prefix>accounts (SADD: the set has a
// slot of its own, so the scripts cannot touch it), unless the same Store did so in the last 10 s; later
// writes cost one script each. Lookup is one script per 1000 msgids, pipelined above that: one round trip
// for a sync_msg page. The PutReply calls that come while another's write is on its way share the next
// script (up to 64 records), and a MarkDone trims the done set and renews the keys' time-to-live only
// once per 10 s per account and Store, so under load a done mark costs a few commands per batch.
//
// # Keys of earlier versions
//
// Earlier versions kept <prefix>cursor:<open_kfid> and <prefix>done:<open_kfid>, without a hash tag, and kf
// kept its skip-history boundary as the cursor of "<open_kfid>#wxkf_history_before". The first time a Store
// reads an account (Load, LoadMeta, Done or Lookup) it copies them into the keys above (a cursor or boundary
// only where none is stored yet; done marks merged, the later time winning) and then deletes them.
// Accounts also lists the accounts that still have such a cursor key (SCAN, on every master of a Cluster).
// The old and new leases are different keys: stop every replica of an earlier version before starting this
// one, and do not go back.
//
// # Durability
//
// Every write is acknowledged by the Redis server, whose persistence decides what survives a restart:
// configure AOF with appendfsync everysec (or always) so that a restart does not lose the last cursors and
// done marks. A Redis that lost its data hands out fencing tokens from 1 again; the fence itself does not
// depend on the tokens (it compares the lease value), so it stays correct.
package redis
