package manager_test

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
)

// apiProxy forwards TCP connections to the API server and can blackhole them: while it does, no byte
// goes either way and new connections wait to be forwarded, as when a control plane's load balancer or
// the network drops packets (TCP retransmits, nothing is refused). When it ends, everything held flows
// again. It can also refuse: every connection is closed and new ones are closed at once, as when the API
// server restarts.
type apiProxy struct {
	l        net.Listener
	target   string
	mu       sync.Mutex
	open     chan struct{} // closed while traffic flows
	refusing bool
	conns    map[net.Conn]bool
}

func newAPIProxy(t testing.TB, cfg *rest.Config) *apiProxy {
	t.Helper()
	u, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &apiProxy{l: l, target: u.Host, open: make(chan struct{}), conns: map[net.Conn]bool{}}
	close(p.open)
	t.Cleanup(func() { l.Close(); p.restore() })
	go p.serve()
	return p
}

// config is cfg pointed at the proxy (the server's certificate names 127.0.0.1, as the proxy listens).
func (p *apiProxy) config(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Host = "https://" + p.l.Addr().String()
	return c
}

func (p *apiProxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
		p.open = make(chan struct{})
	default:
	}
}

// refuse closes every connection and every new one until restore.
func (p *apiProxy) refuse() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refusing = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *apiProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refusing = false
	select {
	case <-p.open:
	default:
		close(p.open)
	}
}

// wait returns when traffic may flow.
func (p *apiProxy) wait() {
	p.mu.Lock()
	open := p.open
	p.mu.Unlock()
	<-open
}

func (p *apiProxy) serve() {
	for {
		conn, err := p.l.Accept()
		if err != nil {
			return
		}
		go p.forward(conn)
	}
}

// track remembers c until untrack, or closes it at once while the proxy refuses.
func (p *apiProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refusing {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *apiProxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

func (p *apiProxy) forward(down net.Conn) {
	defer down.Close()
	if !p.track(down) {
		return
	}
	defer p.untrack(down)
	p.wait()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pump := func(dst, src net.Conn) {
		io.Copy(gatedWriter{p, dst}, src)
		dst.Close()
		done <- struct{}{}
	}
	go pump(up, down)
	go pump(down, up)
	<-done
	<-done
}

// gatedWriter holds each write while the proxy blackholes.
type gatedWriter struct {
	p   *apiProxy
	dst net.Conn
}

func (w gatedWriter) Write(b []byte) (int, error) {
	w.p.wait()
	return w.dst.Write(b)
}
