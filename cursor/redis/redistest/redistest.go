// Package redistest starts a real redis-server for tests, or a Redis Cluster of three: on free 127.0.0.1 ports,
// without persistence, owned by the test and stopped at its cleanup. Tests that need Redis fail (never skip)
// when redis-server (or, for a cluster, redis-cli) is missing.
//
//	addr, stop, restart := redistest.Start(t)
//	client := goredis.NewClient(&goredis.Options{Addr: addr})
//
//	addrs := redistest.StartCluster(t)
//	cluster := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
//
// StartMain starts a server for a whole test binary, from TestMain (for examples, which have no testing.TB).
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Start runs redis-server (found on PATH) on a free loopback port with --save "" --appendonly no, waits until
// it answers PING and registers its shutdown with t.Cleanup. It returns the server's address, stop (shut it
// down now; idempotent) and restart (stop if running, then start an empty server on the same address), for
// tests of outages. If redis-server is not installed, Start fails the test: run `make test`, which installs it,
// or `apt-get install redis-server`.
func Start(t testing.TB) (addr string, stop func(), restart func()) {
	t.Helper()
	s := startServer(t, lookPath(t, "redis-server"), t.TempDir(), nil)
	restart = func() {
		t.Helper()
		s.stop()
		if err := s.start(s.port); err != nil {
			t.Fatalf("redistest: restart: %v", err)
		}
	}
	return s.addr(), s.stop, restart
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	bin, err := findBin(name)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func findBin(name string) (string, error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("redistest: %s is not on PATH (%v); run `make test` (it installs redis-server and redis-cli) "+
			"or install it yourself (Debian/Ubuntu: apt-get install redis-server). Redis tests never skip.", name, err)
	}
	return bin, nil
}

// StartMain is Start for a TestMain, which has no testing.TB: it runs redis-server the same way and returns
// the server's address and stop, which shuts the server down and removes its directory. Call stop after
// m.Run; on Linux a test binary that dies without calling it still takes the server down.
func StartMain() (addr string, stop func(), err error) {
	bin, err := findBin("redis-server")
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "redistest")
	if err != nil {
		return "", nil, fmt.Errorf("redistest: %w", err)
	}
	s, err := launch(bin, dir, nil)
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("redistest: %w", err)
	}
	return s.addr(), func() {
		s.stop()
		_ = os.RemoveAll(dir)
	}, nil
}

// startServer starts bin on a free port with the test settings plus extra, arguments in which "{port}" and
// "{port2}" stand for the server's port and for a second free port (a Cluster bus). It registers the stop
// with t.Cleanup.
func startServer(t testing.TB, bin, dir string, extra []string) *server {
	t.Helper()
	s, err := launch(bin, dir, extra)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.stop)
	return s
}

// launch is startServer without a test: the caller stops the server.
func launch(bin, dir string, extra []string) (*server, error) {
	s := &server{bin: bin, dir: dir}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err == nil {
			var port2 int
			port2, err = freePort()
			s.extra = expand(extra, port, port2)
		}
		if err != nil {
			return nil, err
		}
		if lastErr = s.start(port); lastErr == nil {
			return s, nil
		}
		// Most likely another process took a port between freePort and the bind: try others.
	}
	return nil, lastErr
}

func expand(args []string, port, port2 int) []string {
	r := strings.NewReplacer("{port}", strconv.Itoa(port), "{port2}", strconv.Itoa(port2))
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.Replace(a)
	}
	return out
}

// StartCluster runs a Redis Cluster of three masters without replicas (redis-server with cluster-enabled,
// joined by redis-cli --cluster create) on free loopback ports, waits until every node reports
// cluster_state:ok with all 16384 slots assigned, and registers the shutdown of all three with t.Cleanup. It
// returns the nodes' addresses. Like Start, it fails the test if redis-server or redis-cli is missing.
func StartCluster(t testing.TB) []string {
	t.Helper()
	server, cli := lookPath(t, "redis-server"), lookPath(t, "redis-cli")
	addrs := make([]string, 3)
	for i := range addrs {
		s := startServer(t, server, t.TempDir(), []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000",
			"--cluster-port", "{port2}",
		})
		addrs[i] = s.addr()
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	out, err := exec.Command(cli, append(args, "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v: %s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range addrs {
		for {
			info, err := command(addr, "CLUSTER INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s not ready within 30s: %v %s", addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return addrs
}

type server struct {
	bin, dir string
	extra    []string // more arguments
	port     int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	out    *lockedBuffer
}

func (s *server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *server) start(port int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.port = port
	out := &lockedBuffer{}
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--loglevel", "warning",
	)
	cmd.Args = append(cmd.Args, s.extra...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if ping(s.addr()) == nil {
			s.cmd, s.exited, s.out = cmd, exited, out
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited at start: %s", port, out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on port %d did not answer PING within 15s: %s", port, out.String())
		}
	}
}

func (s *server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd, s.exited = nil, nil
}

// ping speaks just enough RESP to know the server is ready.
func ping(addr string) error {
	reply, err := command(addr, "PING")
	if err == nil && reply != "PONG" {
		err = errors.New("unexpected reply to PING: " + strconv.Quote(reply))
	}
	return err
}

// command sends one inline command on a new connection and returns its reply, a simple or bulk string.
func command(addr, cmd string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"):
		return line[1:], nil
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("bad bulk length in %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", errors.New("unexpected reply to " + cmd + ": " + strconv.Quote(line))
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
