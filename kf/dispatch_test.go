package kf

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A parked key runs again as soon as unpark is called for it, long before its delay; unpark of a key
// that is not parked does nothing.
func TestDispatcherUnpark(t *testing.T) {
	d := newDispatcher(2, context.Background())
	t.Cleanup(d.close)
	var runs atomic.Int32
	ran := make(chan struct{}, 2)
	require.True(t, d.submit("c", &job{run: func() time.Duration {
		ran <- struct{}{}
		if runs.Add(1) == 1 {
			return time.Hour
		}
		return 0
	}}))
	<-ran
	require.Eventually(t, func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.parked == 1 }, time.Second, time.Millisecond)
	d.unpark("other") // not parked: nothing happens
	d.unpark("c")
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("the parked job did not run again after unpark")
	}
	require.EqualValues(t, 2, runs.Load())
}
