// Command echoserver is the lab's "internet" server. It answers every TCP line and every UDP datagram
// with the client address it saw, the TCP maximum segment size of the connection (0 for UDP) and the
// request itself, and appends one line per request ("tcp|udp ADDR TOKEN") to the log file, so that a test
// can prove which source address a packet arrived with, or that a packet never arrived.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
)

func main() {
	listen := flag.String("listen", ":8080", "comma-separated TCP and UDP addresses to serve; one per local "+
		"address, so that UDP replies leave from the address the request went to")
	logPath := flag.String("log", "", "file that gets one line per request")
	flag.Parse()
	lg := &requestLog{}
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			slog.Error("open log", "err", err)
			os.Exit(1)
		}
		lg.f = f
	}
	for _, addr := range strings.Split(*listen, ",") {
		if err := serve(addr, lg); err != nil {
			slog.Error("listen", "addr", addr, "err", err)
			os.Exit(1)
		}
	}
	select {}
}

// serve answers TCP and UDP on addr in the background.
func serve(addr string, lg *requestLog) error {
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	go serveUDP(udp, lg)
	go serveTCP(tcp, lg)
	return nil
}

// requestLog serialises log lines from concurrent connections.
type requestLog struct {
	mu sync.Mutex
	f  *os.File
}

func (l *requestLog) record(proto, addr, request string) {
	if l.f == nil {
		return
	}
	token, _, _ := strings.Cut(request, " ")
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.f, "%s %s %s\n", proto, addr, token)
}

func serveTCP(ln net.Listener, lg *requestLog) {
	for {
		c, err := ln.Accept()
		if err != nil {
			slog.Error("accept", "err", err)
			return
		}
		go handleTCP(c.(*net.TCPConn), lg)
	}
}

// handleTCP answers each line of the connection until the client closes it.
func handleTCP(c *net.TCPConn, lg *requestLog) {
	defer c.Close()
	mss := maxSegment(c)
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		lg.record("tcp", c.RemoteAddr().String(), line)
		if _, err := fmt.Fprintf(c, "%s %d %s\n", c.RemoteAddr(), mss, line); err != nil {
			return
		}
	}
}

// maxSegment is the connection's MSS as the kernel negotiated it: it shows whether the SYN's MSS was
// clamped on the way.
func maxSegment(c *net.TCPConn) int {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1
	}
	mss := -1
	_ = raw.Control(func(fd uintptr) {
		mss, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG)
	})
	return mss
}

func serveUDP(pc net.PacketConn, lg *requestLog) {
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			slog.Error("read udp", "err", err)
			return
		}
		req := strings.TrimSuffix(string(buf[:n]), "\n")
		lg.record("udp", addr.String(), req)
		_, _ = pc.WriteTo([]byte(fmt.Sprintf("%s 0 %s\n", addr, req)), addr)
	}
}
