package kf

import (
	"context"
	"sync"
	"time"
)

// dispatcher runs jobs in order per key (a customer) and concurrently across keys, on a fixed
// number of workers. A key with queued jobs is runnable when no worker holds it and it is not
// parked; runnable keys are served round-robin, one job per turn, so a chatty customer cannot
// starve the others.
//
// A job that must be retried later parks its key: the job stays at the head of the key's queue,
// the worker is freed at once, and the key becomes runnable again when the delay has passed or
// the job's context ends (whichever is first). So a customer whose message waits for WeCom to
// recover keeps their order, and occupies no worker while waiting.
//
// The dispatcher also counts the bytes of the jobs it holds (queued, running or parked), per key
// and in total: the sync engine stops queueing a customer's messages past a budget (see
// session.admit).
type dispatcher struct {
	mu      sync.Mutex
	cond    *sync.Cond
	queues  map[string]*keyQueue
	ready   []*keyQueue     // runnable keys, FIFO
	depth   int             // jobs waiting for a worker (not running, not parked)
	bytes   int64           // bytes of all jobs held
	peak    int64           // highest bytes seen
	parked  int             // keys parked for a retry
	stop    context.Context // wakes every parked job when it ends (shutdown: no more waiting)
	closed  bool
	workers sync.WaitGroup
}

// job is one unit of work for a key.
type job struct {
	// run executes the job. A positive result parks the key for that long and runs the job again
	// afterwards; zero means the job is finished.
	run func() time.Duration
	// ctx, when it ends, wakes a parked job early (it then runs again and sees why).
	ctx  context.Context
	size int64
	// it is the message the job runs (the burst merging looks at what follows in the queue).
	it *item
}

type keyQueue struct {
	key     string
	jobs    []*job
	bytes   int64
	running bool // a worker holds this key
	inReady bool
	parked  bool
	wake    func() // ends the parking early while parked
}

func newDispatcher(workers int, stop context.Context) *dispatcher {
	d := &dispatcher{queues: make(map[string]*keyQueue), stop: stop}
	d.cond = sync.NewCond(&d.mu)
	for i := 0; i < workers; i++ {
		d.workers.Add(1)
		go d.work()
	}
	return d
}

// submit queues j under key. It reports false, and drops the job, after close.
func (d *dispatcher) submit(key string, j *job) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	q := d.queues[key]
	if q == nil {
		q = &keyQueue{key: key}
		d.queues[key] = q
	}
	q.jobs = append(q.jobs, j)
	q.bytes += j.size
	d.bytes += j.size
	d.peak = max(d.peak, d.bytes)
	d.depth++
	d.makeReadyLocked(q)
	return true
}

func (d *dispatcher) makeReadyLocked(q *keyQueue) {
	if !q.running && !q.inReady && !q.parked && len(q.jobs) > 0 {
		q.inReady = true
		d.ready = append(d.ready, q)
		d.cond.Signal()
	}
}

func (d *dispatcher) work() {
	defer d.workers.Done()
	for {
		d.mu.Lock()
		for len(d.ready) == 0 && !(d.closed && d.parked == 0) {
			d.cond.Wait()
		}
		if len(d.ready) == 0 { // closed, drained and nothing parked
			d.mu.Unlock()
			return
		}
		q := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		q.inReady = false
		q.running = true
		j := q.jobs[0]
		d.depth--
		d.mu.Unlock()

		again := j.run()

		d.mu.Lock()
		q.running = false
		if again > 0 {
			d.depth++ // it waits again, parked
			d.parkLocked(q, j, again)
		} else {
			q.jobs[0] = nil
			q.jobs = q.jobs[1:]
			q.bytes -= j.size
			d.bytes -= j.size
			if len(q.jobs) == 0 {
				delete(d.queues, q.key)
			} else {
				d.makeReadyLocked(q)
			}
		}
		d.mu.Unlock()
	}
}

// parkLocked keeps q off the ready list until delay has passed, j's context ends, unpark is called
// for its key or the dispatcher is told to stop waiting.
func (d *dispatcher) parkLocked(q *keyQueue, j *job, delay time.Duration) {
	q.parked = true
	d.parked++
	p := new(parking)
	wake := func() {
		p.once.Do(func() {
			p.mu.Lock()
			p.timer.Stop()
			if p.stop != nil {
				p.stop()
			}
			p.stopAll()
			p.mu.Unlock()
			d.mu.Lock()
			q.parked = false
			q.wake = nil
			d.parked--
			d.makeReadyLocked(q)
			if d.parked == 0 && d.closed {
				d.cond.Broadcast() // idle workers may now exit
			}
			d.mu.Unlock()
		})
	}
	p.mu.Lock()
	p.timer = time.AfterFunc(delay, wake)
	if j.ctx != nil {
		p.stop = context.AfterFunc(j.ctx, wake)
	}
	p.stopAll = context.AfterFunc(d.stop, wake)
	p.mu.Unlock()
	q.wake = wake
}

// unpark ends key's parking now, if it is parked: what its job waited for has happened.
func (d *dispatcher) unpark(key string) {
	d.mu.Lock()
	var wake func()
	if q := d.queues[key]; q != nil && q.parked {
		wake = q.wake
	}
	d.mu.Unlock()
	if wake != nil {
		wake()
	}
}

// parking is one parked key's wake-up: whichever of its timer and its context fires first.
type parking struct {
	once    sync.Once
	mu      sync.Mutex
	timer   *time.Timer
	stop    func() bool
	stopAll func() bool
}

// takeFollowing removes from key's queue the jobs right behind the running one for as long as take
// accepts them, and returns them in order. Their bytes stay counted, on the running job, until it
// ends. Called by a running job about its own key.
func (d *dispatcher) takeFollowing(key string, take func(*job) bool) []*job {
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.queues[key]
	if q == nil || len(q.jobs) < 2 {
		return nil
	}
	n := 1
	for n < len(q.jobs) && take(q.jobs[n]) {
		n++
	}
	if n == 1 {
		return nil
	}
	taken := append([]*job(nil), q.jobs[1:n]...)
	head := q.jobs[0]
	for _, j := range taken {
		head.size += j.size
	}
	q.jobs = append(q.jobs[:1], q.jobs[n:]...)
	d.depth -= len(taken)
	return taken
}

// queued returns the number of jobs waiting for a worker (parked ones included).
func (d *dispatcher) queued() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.depth
}

// keyBytes returns the bytes held for key, and in total.
func (d *dispatcher) keyBytes(key string) (keyBytes, total int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if q := d.queues[key]; q != nil {
		keyBytes = q.bytes
	}
	return keyBytes, d.bytes
}

// usage returns the bytes held and the highest value seen.
func (d *dispatcher) usage() (bytes, peak int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bytes, d.peak
}

// close stops taking jobs, lets the workers finish every queued job (parked ones when they wake),
// and waits for them.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.cond.Broadcast()
	d.mu.Unlock()
	d.workers.Wait()
}
