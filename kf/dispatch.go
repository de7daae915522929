package kf

import (
	"sync"
)

// dispatcher runs jobs in order per key (a customer) and concurrently across keys, on a fixed
// number of workers. A key with queued jobs is runnable when no worker holds it; runnable keys
// are served round-robin, one job per turn, so a chatty customer cannot starve the others.
type dispatcher struct {
	mu      sync.Mutex
	cond    *sync.Cond
	queues  map[string]*keyQueue
	ready   []*keyQueue // runnable keys, FIFO
	depth   int         // queued jobs, not counting running ones
	closed  bool
	workers sync.WaitGroup
}

type keyQueue struct {
	key     string
	jobs    []func()
	running bool // a worker holds this key
	inReady bool
}

func newDispatcher(workers int) *dispatcher {
	d := &dispatcher{queues: make(map[string]*keyQueue)}
	d.cond = sync.NewCond(&d.mu)
	for i := 0; i < workers; i++ {
		d.workers.Add(1)
		go d.work()
	}
	return d
}

// submit queues job under key. It reports false, and drops the job, after close.
func (d *dispatcher) submit(key string, job func()) bool {
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
	q.jobs = append(q.jobs, job)
	d.depth++
	if !q.running && !q.inReady {
		q.inReady = true
		d.ready = append(d.ready, q)
		d.cond.Signal()
	}
	return true
}

func (d *dispatcher) work() {
	defer d.workers.Done()
	for {
		d.mu.Lock()
		for len(d.ready) == 0 && !d.closed {
			d.cond.Wait()
		}
		if len(d.ready) == 0 { // closed and drained
			d.mu.Unlock()
			return
		}
		q := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		q.inReady = false
		q.running = true
		job := q.jobs[0]
		q.jobs[0] = nil
		q.jobs = q.jobs[1:]
		d.depth--
		d.mu.Unlock()

		job()

		d.mu.Lock()
		q.running = false
		if len(q.jobs) > 0 {
			q.inReady = true
			d.ready = append(d.ready, q)
			d.cond.Signal()
		} else {
			delete(d.queues, q.key)
		}
		d.mu.Unlock()
	}
}

// queued returns the number of jobs waiting for a worker.
func (d *dispatcher) queued() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.depth
}

// close stops taking jobs, lets the workers finish every queued job, and waits for them.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.cond.Broadcast()
	d.mu.Unlock()
	d.workers.Wait()
}
