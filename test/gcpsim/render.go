package gcpsim

import (
	"fmt"
	"strconv"
)

// linkBase is the host part of the API's selfLinks, whatever endpoint the request came to.
const linkBase = "https://www.googleapis.com/compute/v1/"

type instanceJSON struct {
	Kind              string    `json:"kind"`
	ID                string    `json:"id"`
	Name              string    `json:"name"`
	Zone              string    `json:"zone"`
	MachineType       string    `json:"machineType"`
	Status            string    `json:"status"`
	SelfLink          string    `json:"selfLink"`
	NetworkInterfaces []nicJSON `json:"networkInterfaces"`
}

type nicJSON struct {
	Kind          string      `json:"kind"`
	Name          string      `json:"name"`
	Network       string      `json:"network"`
	Subnetwork    string      `json:"subnetwork"`
	NetworkIP     string      `json:"networkIP"`
	Fingerprint   string      `json:"fingerprint"`
	StackType     string      `json:"stackType"`
	AliasIPRanges []aliasJSON `json:"aliasIpRanges,omitempty"`
}

type aliasJSON struct {
	IPCIDRRange         string `json:"ipCidrRange"`
	SubnetworkRangeName string `json:"subnetworkRangeName,omitempty"`
}

type subnetJSON struct {
	Kind              string           `json:"kind"`
	ID                string           `json:"id"`
	Name              string           `json:"name"`
	Region            string           `json:"region"`
	Network           string           `json:"network"`
	IPCIDRRange       string           `json:"ipCidrRange"`
	GatewayAddress    string           `json:"gatewayAddress"`
	SecondaryIPRanges []SecondaryRange `json:"secondaryIpRanges,omitempty"`
	SelfLink          string           `json:"selfLink"`
}

type operationJSON struct {
	Kind                string       `json:"kind"`
	ID                  string       `json:"id"`
	Name                string       `json:"name"`
	Zone                string       `json:"zone"`
	OperationType       string       `json:"operationType"`
	TargetLink          string       `json:"targetLink"`
	TargetID            string       `json:"targetId"`
	Status              string       `json:"status"`
	User                string       `json:"user"`
	Progress            int          `json:"progress"`
	InsertTime          string       `json:"insertTime"`
	StartTime           string       `json:"startTime,omitempty"`
	EndTime             string       `json:"endTime,omitempty"`
	SelfLink            string       `json:"selfLink"`
	Error               *opErrorJSON `json:"error,omitempty"`
	HTTPErrorStatusCode int          `json:"httpErrorStatusCode,omitempty"`
	HTTPErrorMessage    string       `json:"httpErrorMessage,omitempty"`
}

type opErrorJSON struct {
	Errors []opErrorItem `json:"errors"`
}

type opErrorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (s *state) zoneLink(zone string) string {
	return fmt.Sprintf("%sprojects/%s/zones/%s", linkBase, s.project, zone)
}

func (s *state) instanceLink(in *instance) string {
	return s.zoneLink(in.zone) + "/instances/" + in.name
}

func (s *state) subnetLink(sn *subnet) string {
	return fmt.Sprintf("%sprojects/%s/regions/%s/subnetworks/%s", linkBase, s.project, sn.region, sn.name)
}

func (s *state) networkLink(network string) string {
	return fmt.Sprintf("%sprojects/%s/global/networks/%s", linkBase, s.project, network)
}

func (s *state) renderInstance(in *instance) instanceJSON {
	out := instanceJSON{Kind: "compute#instance", ID: strconv.FormatUint(in.id, 10), Name: in.name, Zone: s.zoneLink(in.zone),
		MachineType: s.zoneLink(in.zone) + "/machineTypes/" + in.machineType, Status: in.status, SelfLink: s.instanceLink(in)}
	for _, n := range in.nics {
		nj := nicJSON{Kind: "compute#networkInterface", Name: n.name, Network: s.networkLink(n.subnet.network),
			Subnetwork: s.subnetLink(n.subnet), NetworkIP: n.ip.String(), Fingerprint: n.fingerprint, StackType: "IPV4_ONLY"}
		for _, a := range n.aliases {
			nj.AliasIPRanges = append(nj.AliasIPRanges, aliasJSON{IPCIDRRange: a.prefix.String(), SubnetworkRangeName: a.rangeName})
		}
		out.NetworkInterfaces = append(out.NetworkInterfaces, nj)
	}
	return out
}

func (s *state) renderSubnet(sn *subnet) subnetJSON {
	return subnetJSON{Kind: "compute#subnetwork", ID: strconv.FormatUint(sn.id, 10), Name: sn.name, Region: fmt.Sprintf("%sprojects/%s/regions/%s", linkBase, s.project, sn.region),
		Network: s.networkLink(sn.network), IPCIDRRange: sn.primary.String(), GatewayAddress: sn.primary.Addr().Next().String(),
		SecondaryIPRanges: sn.secondary, SelfLink: s.subnetLink(sn)}
}
