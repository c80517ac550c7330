package netlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// IperfPort is where StartIperfServer listens.
const IperfPort = 5201

// StartIperfServer runs `iperf3 -s` in the external namespace on IperfPort of every address the
// external host has (ServerIP and AltServerIP) and waits until it listens. Stop it with Stop on the
// returned server, whose Addr is ServerIP:IperfPort.
func (t *Topology) StartIperfServer(ctx context.Context) (*EchoServer, error) {
	s := &EchoServer{Addr: netip.AddrPortFrom(ServerIP, IperfPort)}
	var err error
	s.cmd, err = t.External.Start("iperf3", "-s", "-p", strconv.Itoa(IperfPort))
	if err != nil {
		return nil, fmt.Errorf("start iperf3: %w", err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out, _ := t.External.Run(ctx, nil, "ss", "-ltnH", "sport", "=", ":"+strconv.Itoa(IperfPort))
		if len(out) > 0 {
			return s, nil
		}
	}
	_ = s.Stop()
	return nil, fmt.Errorf("iperf3 server did not listen")
}

// IperfRun is one iperf3 TCP client run (one stream).
type IperfRun struct {
	Server netip.AddrPort
	// Duration is how long the client sends; Bytes, when set, replaces it with an amount to send.
	Duration time.Duration
	Bytes    int64
	// Pin, when set, pins the client to ClientCPU and the server, for this run, to ServerCPU (iperf3 -A):
	// on a small machine it keeps the two ends from sharing a CPU, as they never do in a cluster.
	Pin                  bool
	ClientCPU, ServerCPU int
}

// IperfResult is what the receiving side counted.
type IperfResult struct {
	BitsPerSecond float64
	Bytes         int64
	Retransmits   int
}

// Iperf runs an iperf3 client from the namespace and returns what the server received.
func (ns *Namespace) Iperf(ctx context.Context, r IperfRun) (IperfResult, error) {
	args := []string{"-c", r.Server.Addr().String(), "-p", strconv.Itoa(int(r.Server.Port())), "-J"}
	if r.Bytes > 0 {
		args = append(args, "-n", strconv.FormatInt(r.Bytes, 10))
	} else {
		args = append(args, "-t", strconv.Itoa(int(r.Duration/time.Second)))
	}
	if r.Pin {
		args = append(args, "-A", fmt.Sprintf("%d,%d", r.ClientCPU, r.ServerCPU))
	}
	out, err := ns.Run(ctx, nil, "iperf3", args...)
	if err != nil {
		return IperfResult{}, err
	}
	var res struct {
		End struct {
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
				Bytes         int64   `json:"bytes"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return IperfResult{}, fmt.Errorf("iperf3 output: %w", err)
	}
	e := res.End
	return IperfResult{BitsPerSecond: e.SumReceived.BitsPerSecond, Bytes: e.SumReceived.Bytes, Retransmits: e.SumSent.Retransmits}, nil
}
