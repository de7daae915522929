package redis

import (
	"context"
	"errors"
)

var errNotImplemented = errors.New("cursor/redis: fenced writes are not implemented yet")

// Key implements cursor.Lease.
func (l *lease) Key() string { return l.key }

// Token implements cursor.Lease. Not implemented yet: always 0.
func (l *lease) Token() uint64 { return 0 }

// Save implements cursor.Lease. Not implemented yet.
func (l *lease) Save(context.Context, string) error { return errNotImplemented }

// SetMeta implements cursor.Lease. Not implemented yet.
func (l *lease) SetMeta(context.Context, string, string) error { return errNotImplemented }

// MarkDone implements cursor.Lease. Not implemented yet.
func (l *lease) MarkDone(context.Context, ...string) error { return errNotImplemented }

// PutReply implements cursor.Lease. Not implemented yet.
func (l *lease) PutReply(context.Context, string, []byte) error { return errNotImplemented }
