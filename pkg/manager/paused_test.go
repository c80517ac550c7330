package manager_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/go-logr/logr/funcr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	egressgwv1 "github.com/egressgw/egressgw/api/v1alpha1"
	"github.com/egressgw/egressgw/pkg/manager"
	"github.com/egressgw/egressgw/providers/aws"
	"github.com/egressgw/egressgw/test/ec2sim"
)

// childSpec is what the manager process of TestPausedLeaderActsNoMore needs: the API server, the EC2
// endpoint and the agents' port.
type childSpec struct {
	Host            string
	CA, Cert, Key   []byte
	EC2             string
	AgentHealthPort int
}

const childEnv = "EGRESSGW_TEST_MANAGER_PROCESS"

// TestManagerProcess is not a test: it is the manager replica that TestPausedLeaderActsNoMore runs as a
// child process of the test binary, so that it can be stopped (SIGSTOP) as a paused container is.
func TestManagerProcess(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("the manager process of TestPausedLeaderActsNoMore; runs only as its child")
	}
	var s childSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		t.Fatal(err)
	}
	cfg := &rest.Config{Host: s.Host, TLSClientConfig: rest.TLSClientConfig{CAData: s.CA, CertData: s.Cert, KeyData: s.Key}}
	// It reads where the IPs are before every move (as a new leader does), so that a pause can fall
	// between that read and the move's write.
	p, err := aws.NewFromConfig(simConfig, aws.Options{ClusterName: simCluster, Logger: quiet, LastSeenTTL: -1},
		func(o *ec2.Options) { o.BaseEndpoint = sdkaws.String(s.EC2) })
	if err != nil {
		t.Fatal(err)
	}
	log := funcr.New(func(prefix, args string) { os.Stderr.WriteString(prefix + " " + args + "\n") }, funcr.Options{})
	o := testRunOptions(s.AgentHealthPort, p, log)
	o.LeaderElection.ReleaseOnCancel = false
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	err = manager.Run(ctx, cfg, o)
	os.Stderr.WriteString("manager returned: " + errString(err) + "\n")
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// ec2Front is the paused replica's EC2 endpoint: it records when each request arrives and can hold one
// until the test lets it through.
type ec2Front struct {
	sim  http.Handler
	mu   sync.Mutex
	log  []frontCall
	hold func(form url.Values) bool // the first request it matches is held
	held chan chan struct{}
}

type frontCall struct {
	action string
	at     time.Time
}

func (f *ec2Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	f.mu.Lock()
	f.log = append(f.log, frontCall{form.Get("Action"), time.Now()})
	hold := f.hold != nil && f.hold(form)
	if hold {
		f.hold = nil
	}
	f.mu.Unlock()
	if hold {
		release := make(chan struct{})
		f.held <- release
		<-release
	}
	f.sim.ServeHTTP(w, r)
}

// since returns the actions of the requests that arrived after t.
func (f *ec2Front) since(t time.Time) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.log {
		if c.at.After(t) {
			out = append(out, c.action)
		}
	}
	return out
}

// TestPausedLeaderActsNoMore pauses the leader (SIGSTOP of its process) in the middle of a failover, after
// the move's read of the cloud and before its write, for longer than its lease. Another replica takes
// over and moves the IP. When the paused one resumes, it must send nothing more to the cloud (the move's
// write would take the IP back: two leaders acting) and write no status.
func TestPausedLeaderActsNoMore(t *testing.T) {
	s := &leaderScene{}
	s.vpc = newSimVPC(t, []simNode{{"gw-1", 1, "m5.large"}, {"gw-2", 1, "m5.large"}, {"gw-3", 1, "m5.large"}}, ec2sim.Options{})
	s.c = newCluster(t, s.vpc.provider)
	s.c.addSimNodes(s.vpc)
	s.c.create(&egressgwv1.EgressGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gatewaySpec(leaderIPs...)})
	front := &ec2Front{sim: s.vpc.sim, held: make(chan chan struct{}, 1)}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	child := startManagerProcess(t, s.c, srv.URL)
	s.c.eventually("the manager process to place every IP", s.allPlaced)
	s.c.startManager("m2", nil)
	s.watchOneHolder(t)

	dead := s.vpc.holder(leaderIPs[0])
	var moving []string
	for _, ip := range leaderIPs {
		if s.vpc.holder(ip) == dead {
			moving = append(moving, ip)
		}
	}
	front.mu.Lock()
	front.hold = func(form url.Values) bool {
		return form.Get("Action") == "DescribeNetworkInterfaces" && onlyIPs(form, moving)
	}
	front.mu.Unlock()
	s.c.killAgent(dead)
	release := <-front.held // the move's read is on the wire
	if err := child.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	s.converged(t, dead)
	time.Sleep(time.Second) // let the new leader's last writes settle
	before := s.c.gateway("gw").ResourceVersion
	holders := map[string]string{}
	for _, ip := range leaderIPs {
		holders[ip] = s.vpc.holder(ip)
	}
	resumed := time.Now()
	close(release) // the read is answered with today's truth, as EC2 would have answered it
	if err := child.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the resumed replica did not exit after losing its lease")
	}
	time.Sleep(time.Second)
	if calls := front.since(resumed); len(calls) > 0 {
		t.Errorf("the resumed replica called the cloud: %v", calls)
	}
	for _, ip := range leaderIPs {
		if h := s.vpc.holder(ip); h != holders[ip] {
			t.Errorf("%s moved from %s to %s after the old leader resumed", ip, holders[ip], h)
		}
	}
	if after := s.c.gateway("gw").ResourceVersion; after != before {
		t.Errorf("the gateway was written after the old leader resumed (resourceVersion %s -> %s): %+v", before, after, s.c.gateway("gw").Status)
	}
}

// onlyIPs reports whether a DescribeNetworkInterfaces filters on exactly ips' addresses.
func onlyIPs(form url.Values, ips []string) bool {
	var values []string
	for k, v := range form {
		if strings.HasPrefix(k, "Filter.") && strings.Contains(k, ".Value.") && strings.HasPrefix(v[0], "10.0.1.") {
			values = append(values, v[0])
		}
	}
	if len(values) != len(ips) {
		return false
	}
	for _, ip := range ips {
		if !strings.Contains(strings.Join(values, ","), ip) {
			return false
		}
	}
	return true
}

// startManagerProcess runs a manager replica as a child process of the test binary, logging through t,
// and kills it when the test ends.
func startManagerProcess(t *testing.T, c *cluster, ec2URL string) *exec.Cmd {
	t.Helper()
	cfg := c.env.Config
	spec, err := json.Marshal(childSpec{Host: cfg.Host, CA: cfg.CAData, Cert: cfg.CertData, Key: cfg.KeyData, EC2: ec2URL, AgentHealthPort: c.port})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestManagerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	done := false
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			if !done {
				t.Logf("[process] %s", sc.Text())
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		mu.Lock()
		done = true
		mu.Unlock()
	})
	return cmd
}
