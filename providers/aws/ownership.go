package aws

import (
	"fmt"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/egressgw/egressgw/providers"
)

// Whose an address is, as far as EC2 can tell. EC2 records no owner per private address, only per
// interface (its tags and attachment), so egressgw's addresses are the secondary addresses of egressgw's
// own interfaces:
//
//   - dedicated mode: an interface tagged egressgw.io/cluster=<cluster> and egressgw.io/role=egress, not at
//     device index 0. egressgw creates and adopts only such interfaces, and the VPC CNI leaves them alone
//     (no_manage), so nothing else puts addresses there.
//   - primary mode: a primary interface (device index 0) tagged egressgw.io/cluster=<cluster> (any value
//     when no cluster name is set), the tag the IAM policy requires before egressgw may assign there at all.
//
// Any other holder (the VPC CNI's interfaces and the addresses it gives pods, another cluster's egress
// interfaces, untagged interfaces, an interface's primary address) is in use: egressgw never takes it.

// notEgress says why the address f, found on nic, is not egressgw's to move ("" when it is).
func (p *Provider) notEgress(nic types.NetworkInterface, f found) string {
	if f.Primary {
		return fmt.Sprintf("%s is the primary address of %s%s, not an egress IP", f.IP, f.Interface, onInstance(f.Instance))
	}
	tags := map[string]string{}
	for _, t := range nic.TagSet {
		tags[sdkaws.ToString(t.Key)] = sdkaws.ToString(t.Value)
	}
	cluster, tagged := tags[TagCluster]
	ours := tagged && (p.opts.ClusterName == "" || cluster == p.opts.ClusterName)
	primary := isPrimaryAttachment(nic.Attachment)
	if p.dedicated() {
		if ours && tags[TagRole] == RoleEgress && !primary {
			return ""
		}
		return fmt.Sprintf("%s is held by %s%s, which is not an egress interface of cluster %s (tags %s=%s and %s=%s): it is a pod's address from the CNI or another tool's, and egressgw does not take it; choose another egress IP, or unassign it there",
			f.IP, f.Interface, onInstance(f.Instance), p.opts.ClusterName, TagCluster, p.opts.ClusterName, TagRole, RoleEgress)
	}
	if ours && primary {
		return ""
	}
	return fmt.Sprintf("%s is held by %s%s, which is not the primary interface of a gateway tagged %s: egressgw takes it for another tool's address and does not take it; if the interface is a gateway's, tag it (docs/aws.md, Permissions), else choose another egress IP or unassign it there",
		f.IP, f.Interface, onInstance(f.Instance), TagCluster)
}

func isPrimaryAttachment(a *types.NetworkInterfaceAttachment) bool {
	return a != nil && sdkaws.ToInt32(a.DeviceIndex) == 0 && sdkaws.ToInt32(a.NetworkCardIndex) == 0
}

func onInstance(instance string) string {
	if instance == "" {
		return " (not attached to an instance)"
	}
	return " (instance " + instance + ")"
}

// refuseInUse is the refusal of an address Describe shows held by something that is not egressgw's;
// a primary address is also the contract's older sentinel for it (ErrAssignedElsewhere from
// Assign, ErrPermanent from Move).
func refuseInUse(f found, also error) error {
	if f.Primary {
		return fmt.Errorf("%s: %w: %w", f.InUse, providers.ErrIPInUse, also)
	}
	return fmt.Errorf("%s: %w", f.InUse, providers.ErrIPInUse)
}
