package cniplugin

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfigDefaultsAndPrevResultBytes(t *testing.T) {
	stdin := `{"cniVersion":"1.0.0","name":"n","type":"egressgw-cni","prevResult": {"cniVersion":"1.0.0", "ips":[]}}`
	cfg, err := ParseConfig([]byte(stdin))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Conf.SocketPath != "/run/egressgw/cni.sock" || cfg.AddTimeout != 10*time.Second || cfg.DeleteTimeout != 5*time.Second {
		t.Fatalf("defaults = %+v", cfg)
	}
	if string(cfg.RawPrevResult) != `{"cniVersion":"1.0.0", "ips":[]}` {
		t.Fatalf("prevResult bytes = %s, want them as sent", cfg.RawPrevResult)
	}
}

func TestParseConfigNamesEveryBadKey(t *testing.T) {
	_, err := ParseConfig([]byte(`{"type":"egressgw-cni","socketPath":"rel.sock","addTimeout":"ten","deleteTimeout":"-1s","logLevel":"loud"}`))
	for _, want := range []string{"socketPath", "addTimeout", "deleteTimeout", "logLevel"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestParseArgs(t *testing.T) {
	args, err := ParseArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u;OTHER=x=y")
	if err != nil || args != (PodArgs{Namespace: "shop", Name: "web-0", UID: "u"}) || !args.FromKubernetes() {
		t.Fatalf("ParseArgs = %+v, %v", args, err)
	}
	if args, err := ParseArgs(""); err != nil || args.FromKubernetes() {
		t.Fatalf("empty CNI_ARGS = %+v, %v", args, err)
	}
	if _, err := ParseArgs("K8S_POD_NAME"); err == nil || !strings.Contains(err.Error(), "CNI_ARGS") {
		t.Fatalf("malformed CNI_ARGS error = %v", err)
	}
}
