package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor"
)

// A fenced write is one script whose KEYS[1] is the lease and ARGV[1] the holding's value: it writes only if
// the lease still holds that value, and returns 1, else it writes nothing and returns 0. The check and the
// write are atomic on the server, so once another holder took the key (which it can only do after this
// holding's key expired or was deleted) nothing of this holding lands.

// setScript: KEYS: lease, target; ARGV: lease value, field, value. An empty field SETs the target string (the
// cursor); else HSETs field in the target hash (metadata).
var setScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('SET', KEYS[2], ARGV[3])
else
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
end
return 1
`)

// putReplyScript: KEYS: lease, reply; ARGV: lease value, then pairs of msgid and record stamped with the put
// time ("<unix ms>:<record>"). The cheapest fenced write there is (the lease check and one HSET): a reply
// record is written on the way to every reply, and the records that concurrent calls put meanwhile share one
// script (see lease.PutReply). Expiry is read from the stamp (Lookup) and swept by MarkDone, which also keeps
// the hash expiring a little over a retention after the account's last done mark.
var putReplyScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
return 1
`)

// putBatch is the records of one putReplyScript call: the records put while the previous call ran. Its first
// caller (the leader) waits for the previous batch to end, then writes the batch for every caller in it.
type putBatch struct {
	fields  []any         // msgid, stamped record, …
	prev    chan struct{} // the previous batch's done (nil: none)
	started bool          // the leader is writing it: put the next record in a new batch
	done    chan struct{} // closed once written (or refused); err is set
	err     error
}

const (
	// maxPutBatch bounds the records of one putReplyScript call.
	maxPutBatch = 64
	// putTimeout bounds a batch's write: its leader's context is not used, so that a caller who gives up
	// does not fail the others' records.
	putTimeout = 10 * time.Second
)

// Save implements cursor.Lease: SET <prefix>{<key>}:cursor in a fenced script.
func (l *lease) Save(ctx context.Context, cur string) error {
	if err := checkValue("cursor", cur); err != nil {
		return err
	}
	return l.write(ctx, "save cursor", setScript, []string{l.s.acct(l.key, "cursor")}, "", cur)
}

// SetMeta implements cursor.Lease: HSET <prefix>{<key>}:meta <name> <value> in a fenced script.
func (l *lease) SetMeta(ctx context.Context, name, value string) error {
	if err := checkMetaName(name); err != nil {
		return err
	}
	if err := checkValue("metadata value", value); err != nil {
		return err
	}
	return l.write(ctx, "set "+name, setScript, []string{l.s.acct(l.key, "meta")}, name, value)
}

// PutReply implements cursor.Lease: HSET of <prefix>{<key>}:reply, the record stamped with this process's
// clock, in a fenced script. Calls that come while another call's write is on its way are written together,
// in the order they came, in one script once it returns (group commit: a lone call goes at once, and under
// load one round trip carries up to 64 records). Each call returns when its record is written, or when ctx
// ends first (the record may still be written: a record of a reply that was never sent is harmless).
func (l *lease) PutReply(ctx context.Context, msgID string, rec []byte) error {
	if err := checkMsgIDs([]string{msgID}); err != nil {
		return err
	}
	if len(rec) == 0 || len(rec) > cursor.MaxReplyLen {
		return fmt.Errorf("%w: reply record is %d bytes, want 1 to %d", cursor.ErrInvalidArgument, len(rec), cursor.MaxReplyLen)
	}
	const op = "put reply"
	if err := l.prepare(ctx, op, true); err != nil {
		return err
	}
	stamped := strconv.AppendInt(make([]byte, 0, len(rec)+21), time.Now().UnixMilli(), 10)
	stamped = append(append(stamped, ':'), rec...)

	l.pmu.Lock()
	b, leader := l.lastPut, false
	if b == nil || b.started || len(b.fields) >= 2*maxPutBatch {
		b = &putBatch{done: make(chan struct{})}
		if l.lastPut != nil {
			b.prev = l.lastPut.done
		}
		l.lastPut, leader = b, true
	}
	b.fields = append(b.fields, msgID, stamped)
	l.pmu.Unlock()

	if leader {
		if b.prev == nil {
			l.writePuts(context.WithoutCancel(ctx), b)
		} else {
			go l.writePuts(context.WithoutCancel(ctx), b) // the leader may give up before it goes
		}
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writePuts writes batch b once the batch before it is written.
func (l *lease) writePuts(ctx context.Context, b *putBatch) {
	if b.prev != nil {
		<-b.prev // bounded by the previous write's putTimeout
	}
	l.pmu.Lock()
	b.started = true // no more records join it: b.fields is the leader's now
	l.pmu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, putTimeout)
	b.err = l.write(wctx, "put reply", putReplyScript, []string{l.s.acct(l.key, "reply")}, b.fields...)
	cancel()
	b.fields = nil
	close(b.done)
}

// MarkDone implements cursor.Lease: Dedup.MarkDone's script, fenced. More than 1000 msgids take one script
// per 1000, pipelined: each is atomic and fenced, so if the lease is lost between two of them, the marks
// made before the loss stay (they were made while the lease held the key) and the others are refused.
func (l *lease) MarkDone(ctx context.Context, msgIDs ...string) error {
	if err := checkMsgIDs(msgIDs); err != nil {
		return err
	}
	const op = "mark done"
	if err := l.prepare(ctx, op, len(msgIDs) > 0); err != nil || len(msgIDs) == 0 {
		return err
	}
	cmds, err := l.s.runChunked(ctx, markScript, l.s.markKeys(l.key), l.s.markHead(l.value, l.key), msgIDs)
	ok := err == nil
	for _, cmd := range cmds {
		n, cerr := cmd.Int()
		if err == nil {
			err = cerr
		}
		ok = ok && n == 1
	}
	return l.result(op, err, ok)
}

// write runs a fenced script with KEYS = lease, keys… and ARGV = the holding's value, args….
func (l *lease) write(ctx context.Context, op string, script *goredis.Script, keys []string, args ...any) error {
	if err := l.prepare(ctx, op, true); err != nil {
		return err
	}
	n, err := script.Run(ctx, l.s.c, append([]string{l.rkey}, keys...), append([]any{l.value}, args...)...).Int()
	return l.result(op, err, n == 1)
}

// prepare refuses a write through a lease that Err says is no longer held and, before the first write of
// this holding that changes something, adds the key to <prefix>accounts (SADD: in a Cluster that set has a
// slot of its own, so it cannot be in the script; once per holding, and skipped when this Store added it
// less than maintainEvery ago).
func (l *lease) prepare(ctx context.Context, op string, writes bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.Err(); err != nil {
		return l.refused(op, err)
	}
	if !writes || l.registered.Load() {
		return nil
	}
	if l.s.doneLately(&l.s.registered, l.key) {
		l.registered.Store(true)
		return nil
	}
	if err := l.s.c.SAdd(ctx, l.s.registry(), l.key).Err(); err != nil {
		return fmt.Errorf("cursor/redis: %s of %q: register the account: %w", op, l.key, err)
	}
	l.s.registered.Store(l.key, time.Now())
	l.registered.Store(true)
	return nil
}

func (l *lease) refused(op string, err error) error {
	return fmt.Errorf("cursor/redis: %s of %q refused: %w", op, l.key, err)
}

// result turns the answer of a fenced script into Lease's error: a script that found another value (or none)
// under the lease ends the lease with cursor.ErrLeaseLost.
func (l *lease) result(op string, err error, ok bool) error {
	switch {
	case err != nil:
		return fmt.Errorf("cursor/redis: %s of %q: %w", op, l.key, err)
	case ok:
		return nil
	}
	l.lose("a write found another holder or no lease", nil)
	if err := l.Err(); errors.Is(err, cursor.ErrReleased) {
		return l.refused(op, err) // released while the write was on its way
	}
	return l.refused(op, cursor.ErrLeaseLost)
}
