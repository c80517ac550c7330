package cnirpc

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

func TestClientNamesAnUnreachableAgent(t *testing.T) {
	err := NewClient(filepath.Join(t.TempDir(), "none.sock")).Status(context.Background())
	var unreachable *UnreachableError
	if !errors.As(err, &unreachable) || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("Status = %v", err)
	}
}

func TestAddRequestValidateNamesTheField(t *testing.T) {
	err := AddRequest{Pod: PodIdentity{Name: "web"}, IPs: []netip.Addr{netip.MustParseAddr("fd00::1")}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "namespace, containerID") {
		t.Fatalf("Validate = %v", err)
	}
	err = AddRequest{Pod: PodIdentity{Namespace: "a", Name: "b", ContainerID: "c"}, IPs: []netip.Addr{netip.MustParseAddr("fd00::1")}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "ips[0]") {
		t.Fatalf("Validate = %v", err)
	}
	if got := BoundMessage(strings.Repeat("x", 5000)); len(got) != MaxMessageBytes {
		t.Fatalf("bounded message is %d bytes", len(got))
	}
}
