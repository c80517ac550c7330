package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// EchoPort is the port the echo server listens on, for TCP and UDP.
const EchoPort = 8080

// BuildEchoServer compiles the echo server into dir and returns the binary's path.
func BuildEchoServer(ctx context.Context, dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, "echoserver")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "github.com/egressgw/egressgw/test/netlab/echoserver")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build echo server: %v: %s", err, b)
	}
	return out, nil
}

// EchoServer is a running echo server.
type EchoServer struct {
	// Addr is where it listens (TCP and UDP).
	Addr    netip.AddrPort
	logPath string
	cmd     *exec.Cmd
}

// StartEchoServer runs binary in the external namespace on ServerIP and AltServerIP at EchoPort, logging requests into
// dir, and waits until it accepts connections.
func (t *Topology) StartEchoServer(ctx context.Context, binary, dir string) (*EchoServer, error) {
	s := &EchoServer{Addr: netip.AddrPortFrom(ServerIP, EchoPort), logPath: filepath.Join(dir, t.Prefix+"-echo.log")}
	var err error
	listen := fmt.Sprintf("%s,%s", s.Addr, netip.AddrPortFrom(AltServerIP, EchoPort))
	s.cmd, err = t.External.Start(binary, "-listen", listen, "-log", s.logPath)
	if err != nil {
		return nil, fmt.Errorf("start echo server: %w", err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err = t.External.Ask(ctx, "tcp", s.Addr, "ready", 0); err == nil {
			return s, nil
		}
	}
	return nil, errors.Join(fmt.Errorf("echo server did not answer: %w", err), s.Stop())
}

// Stop kills the server and waits for it.
func (s *EchoServer) Stop() error {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	return nil
}

// Seen returns the source addresses the server logged for requests carrying token, in order.
func (s *EchoServer) Seen(token string) ([]string, error) {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return nil, err
	}
	var seen []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == token {
			seen = append(seen, f[1])
		}
	}
	return seen, nil
}

// SeenAll returns, for every token the server logged, the source addresses it was seen from, in order:
// one read of the log for tests that account for thousands of datagrams.
func (s *EchoServer) SeenAll() (map[string][]string, error) {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return nil, err
	}
	seen := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			seen[f[2]] = append(seen[f[2]], f[1])
		}
	}
	return seen, nil
}

// Reply is what the echo server answered.
type Reply struct {
	// Source is the client address the server saw.
	Source netip.AddrPort
	// MSS is the TCP maximum segment size of the connection at the server (0 for UDP).
	MSS int
	// Echo is the request as it came back.
	Echo string
}

// Ask sends one request ("token" followed by pad bytes) from inside the namespace to the echo server over
// network ("tcp" or "udp") and returns its reply. The whole exchange is bounded by a 3 s timeout.
func (ns *Namespace) Ask(ctx context.Context, network string, server netip.AddrPort, token string, pad int) (Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var conn net.Conn
	err := ns.Do(func() (err error) {
		conn, err = (&net.Dialer{}).DialContext(ctx, network, server.String())
		return err
	})
	if err != nil {
		return Reply{}, err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	req := token + " " + strings.Repeat("x", pad)
	if _, err := conn.Write([]byte(req + "\n")); err != nil {
		return Reply{}, err
	}
	line, err := bufio.NewReaderSize(conn, 64<<10).ReadString('\n')
	if err != nil {
		return Reply{}, fmt.Errorf("%s %s from %s: %w", network, server, ns.Name, err)
	}
	return parseReply(line, req)
}

func parseReply(line, req string) (Reply, error) {
	f := strings.SplitN(strings.TrimSuffix(line, "\n"), " ", 3)
	if len(f) != 3 {
		return Reply{}, fmt.Errorf("malformed reply %q", line)
	}
	src, err := netip.ParseAddrPort(f[0])
	if err != nil {
		return Reply{}, err
	}
	mss, err := strconv.Atoi(f[1])
	if err != nil {
		return Reply{}, err
	}
	if f[2] != req {
		return Reply{}, fmt.Errorf("echo differs from request (%d bytes back, %d sent)", len(f[2]), len(req))
	}
	return Reply{Source: src, MSS: mss, Echo: f[2]}, nil
}

// SourceOf is a shortcut: the source address the server saw for one request, or an error.
func (ns *Namespace) SourceOf(ctx context.Context, network string, server netip.AddrPort, token string) (netip.Addr, error) {
	r, err := ns.Ask(ctx, network, server, token, 0)
	return r.Source.Addr(), err
}

// SendUDP sends one datagram carrying token from inside the namespace and does not wait for an answer:
// for packets that are expected never to arrive, or whose reply cannot come back.
func (ns *Namespace) SendUDP(ctx context.Context, server netip.AddrPort, token string) error {
	return ns.Do(func() error {
		conn, err := (&net.Dialer{}).DialContext(ctx, "udp", server.String())
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Write([]byte(token + "\n"))
		return err
	})
}
