package gcpsim

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// TestAnswersUseOnlyRealFieldNames decodes every kind of answer with the compute API's own message types,
// refusing unknown fields: the generated client discards unknown fields, so a misspelt field in the
// simulator would otherwise go unnoticed (and read as absent).
func TestAnswersUseOnlyRealFieldNames(t *testing.T) {
	sim, c := start(t, Options{})
	sim.SetOperationLatency(0)
	body := fmt.Sprintf(`{"fingerprint":%q,"aliasIpRanges":[%s,{"ipCidrRange":"10.0.1.12"}]}`, c.fingerprint(zoneA, "gw-a1"), podRange)
	_, op := c.patch(zoneA, "gw-a1", "", body) // fails inside the operation: an answer with an error
	cases := []struct {
		path string
		into proto.Message
	}{
		{base + "zones/" + zoneA + "/instances/worker-a4", &computepb.Instance{}},
		{base + "regions/us-central1/subnetworks/gateways-a", &computepb.Subnetwork{}},
		{base + "zones/" + zoneA + "/operations/" + op["name"].(string), &computepb.Operation{}},
		{base + "aggregated/instances?maxResults=2", &computepb.InstanceAggregatedList{}},
	}
	for _, tc := range cases {
		raw := c.raw(tc.path)
		if err := (protojson.UnmarshalOptions{}).Unmarshal(raw, tc.into); err != nil {
			t.Errorf("%s: %v\n%s", tc.path, err, raw)
		}
	}
	status, e := c.do("GET", base+"zones/"+zoneA+"/instances/nope", "")
	if status != 404 || !strings.Contains(fmt.Sprint(e), "was not found") {
		t.Errorf("unknown instance: %d %v", status, e)
	}
}

func (c *client) raw(path string) []byte {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return data
}
