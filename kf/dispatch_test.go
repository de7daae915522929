package kf

import (
	"context"
	"fmt"
	"sync"
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

// Customers take turns: a customer whose job finished goes to the back of the line, behind every
// customer who was waiting meanwhile. With one worker, a flood of x's messages queued before a, b
// and c wrote runs after theirs: x1 (already running), then a, b, c, then the rest of x.
func TestDispatcherTakesTurnsAcrossCustomers(t *testing.T) {
	d := newDispatcher(1, context.Background())
	t.Cleanup(d.close)
	var mu sync.Mutex
	var order []string
	release := make(chan struct{})
	started := make(chan struct{})
	job1 := func(name string, block bool) *job {
		return &job{run: func() time.Duration {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			if block {
				close(started)
				<-release
			}
			return 0
		}}
	}
	require.True(t, d.submit("x", job1("x1", true)))
	<-started
	for i := 2; i <= 4; i++ {
		require.True(t, d.submit("x", job1(fmt.Sprintf("x%d", i), false)))
	}
	for _, c := range []string{"a", "b", "c"} {
		require.True(t, d.submit(c, job1(c, false)))
	}
	close(release)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 7 }, 5*time.Second, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"x1", "a", "b", "c", "x2", "x3", "x4"}, order)
}
