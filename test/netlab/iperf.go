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

// StartIperfServer runs `iperf3 -s` in the external namespace on ServerIP:IperfPort and waits until it
// listens. Stop it with Stop on the returned server.
func (t *Topology) StartIperfServer(ctx context.Context) (*EchoServer, error) {
	s := &EchoServer{Addr: netip.AddrPortFrom(ServerIP, IperfPort)}
	var err error
	s.cmd, err = t.External.Start("iperf3", "-s", "-B", ServerIP.String(), "-p", strconv.Itoa(IperfPort))
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

// Iperf runs an iperf3 TCP client from the namespace to server for the given duration and returns the
// received throughput in bits per second.
func (ns *Namespace) Iperf(ctx context.Context, server netip.AddrPort, d time.Duration) (float64, error) {
	secs := strconv.Itoa(int(d / time.Second))
	out, err := ns.Run(ctx, nil, "iperf3", "-c", server.Addr().String(), "-p", strconv.Itoa(int(server.Port())),
		"-t", secs, "-J")
	if err != nil {
		return 0, err
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, fmt.Errorf("iperf3 output: %w", err)
	}
	return res.End.SumReceived.BitsPerSecond, nil
}
