package redis

// RenewScriptHash is the SHA1 of the lease renewal script, for tests that hold renewals back.
var RenewScriptHash = renewScript.Hash()

// PutReplyScriptHash is the SHA1 of the reply-record script, for tests that hold a write back.
var PutReplyScriptHash = putReplyScript.Hash()

// QueuedPuts reports how many records wait in l's newest PutReply batch that is not being written yet.
func QueuedPuts(l any) int {
	x := l.(*lease)
	x.pmu.Lock()
	defer x.pmu.Unlock()
	if x.lastPut == nil || x.lastPut.started {
		return 0
	}
	return len(x.lastPut.fields) / 2
}
