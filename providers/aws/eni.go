package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/egressgw/egressgw/providers"
	"github.com/egressgw/egressgw/providers/internal/lockedmap"
)

// The dedicated egress interface of a gateway node.
//
// Why: the AWS VPC CNI's ipamd adopts every secondary address it finds on the ENIs it manages into its pod
// IP pool, hands them to pods, and unassigns the surplus above its warm targets. It leaves alone ENIs tagged
// node.k8s.amazonaws.com/no_manage=true, except the primary ENI, which it always manages. So egress IPs live
// on a secondary ENI with that tag.
//
// Found before created: an ENI attached to the instance carrying egressgw.io/cluster=<cluster> and
// egressgw.io/role=egress (made by egressgw, or by the operator in the launch template), else an
// unattached one egressgw made for this instance (egressgw.io/node=<instance>) that a crash left between
// create and attach. Created with a ClientToken derived from the cluster, the instance and the subnet, so
// that two managers, or one repeating after a crash, get the same ENI from EC2 and never two.
const (
	TagNoManage = "node.k8s.amazonaws.com/no_manage"
	TagCluster  = "egressgw.io/cluster"
	TagNode     = "egressgw.io/node"
	TagRole     = "egressgw.io/role"
	RoleEgress  = "egress"
)

// attachTries bounds the retries of an attachment that lost its device index to another tool (the CNI
// attaching its own ENI at the same moment).
const attachTries = 3

// egressENI finds the node's dedicated interface; with create it adopts a leftover or creates and attaches
// one when there is none.
func (p *Provider) egressENI(ctx context.Context, node string, inst types.Instance, primary nicView, create bool) (nicView, error) {
	id := sdkaws.ToString(inst.InstanceId)
	nic, ok, err := p.attachedENI(ctx, node, id)
	switch {
	case err != nil:
		return nicView{}, err
	case ok && create:
		return p.keepWithInstance(ctx, node, nic)
	case ok:
		return nic, nil
	case !create:
		return nicView{}, fmt.Errorf("node %s (instance %s) has no egress interface yet: %w", node, id, providers.ErrNotFound)
	}
	return p.createENI(ctx, node, inst, primary)
}

// attachedENI returns the instance's egress interface, if one is attached.
func (p *Provider) attachedENI(ctx context.Context, node, instance string) (nicView, bool, error) {
	found, err := p.describeENIs(ctx, filter("tag:"+TagCluster, p.opts.ClusterName), filter("tag:"+TagRole, RoleEgress),
		filter("attachment.instance-id", instance))
	if err != nil {
		return nicView{}, false, fmt.Errorf("egress interface of node %s: %w", node, err)
	}
	found = slices.DeleteFunc(found, func(n nicView) bool { return n.device == 0 }) // never the primary, tagged or not
	if len(found) == 0 {
		return nicView{}, false, nil
	}
	if len(found) > 1 {
		p.log.Warn("several egress interfaces on one instance; using the lowest device index", "node", node, "instance", instance, "count", len(found))
	}
	nic := found[0]
	if nic.tags[TagNoManage] != "true" {
		return nicView{}, false, fmt.Errorf("egress interface %s of node %s lacks the tag %s=true, so the VPC CNI would hand its addresses to pods: tag it (in the launch template): %w",
			nic.id, node, TagNoManage, providers.ErrPermanent)
	}
	return nic, true, nil
}

// keepWithInstance makes EC2 delete the interface with its instance, as one attached by the API is not.
func (p *Provider) keepWithInstance(ctx context.Context, node string, nic nicView) (nicView, error) {
	if nic.deleteOnTermination {
		return nic, nil
	}
	_, err := call(ctx, p, "ModifyNetworkInterfaceAttribute", func(ctx context.Context) (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
		return p.ec2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: sdkaws.String(nic.id),
			Attachment: &types.NetworkInterfaceAttachmentChanges{AttachmentId: sdkaws.String(nic.attachmentID), DeleteOnTermination: sdkaws.Bool(true)}})
	})
	if err != nil {
		return nicView{}, fmt.Errorf("make egress interface %s of node %s go with its instance: %w", nic.id, node, err)
	}
	nic.deleteOnTermination = true
	return nic, nil
}

// createENI gives the instance its egress interface: a leftover of an earlier try if there is one, else a
// new one; then attaches it.
func (p *Provider) createENI(ctx context.Context, node string, inst types.Instance, primary nicView) (nicView, error) {
	id := sdkaws.ToString(inst.InstanceId)
	limits, err := p.typeLimits(ctx, string(inst.InstanceType))
	if err != nil {
		return nicView{}, err
	}
	if len(inst.NetworkInterfaces) >= limits.maxInterfaces {
		return nicView{}, interfaceLimit(node, id, string(inst.InstanceType), limits.maxInterfaces)
	}
	token := p.clientToken(id, "")
	for try := 1; ; try++ {
		made, err := p.leftoverOrNew(ctx, node, inst, primary, token)
		if err != nil {
			return nicView{}, err
		}
		nic, err := p.attach(ctx, node, inst, made, limits)
		if err == nil || !hasCode(err, codeENINotFound) || try == attachTries {
			return nic, err
		}
		// EC2 answered the token with an interface deleted since (the node was a gateway before): the next
		// token is derived from that interface, so that racing managers still agree on it.
		token = p.clientToken(id, made.id)
	}
}

func interfaceLimit(node, instance, instanceType string, limit int) error {
	return fmt.Errorf("node %s: instance %s (%s) has all %d network interfaces its type allows, so it has no room for the egress interface: free one, or use an instance type with more: %w",
		node, instance, instanceType, limit, providers.ErrCapacityExhausted)
}

// leftoverOrNew reuses an unattached egress interface made for this instance earlier (deleting any
// further ones), or creates one.
func (p *Provider) leftoverOrNew(ctx context.Context, node string, inst types.Instance, primary nicView, token string) (nicView, error) {
	id := sdkaws.ToString(inst.InstanceId)
	left, err := p.describeENIs(ctx, filter("tag:"+TagCluster, p.opts.ClusterName), filter("tag:"+TagNode, id), filter("status", "available"))
	if err != nil {
		return nicView{}, fmt.Errorf("egress interface of node %s: %w", node, err)
	}
	if len(left) > 0 {
		for _, extra := range left[1:] {
			if err := p.deleteENI(ctx, extra.id); err != nil {
				p.log.Warn("cannot delete a surplus egress interface", "node", node, "eni", extra.id, "error", err)
			}
		}
		p.log.Info("reusing the egress interface an earlier attempt created", "node", node, "instance", id, "eni", left[0].id)
		return left[0], nil
	}
	zone := ""
	if inst.Placement != nil {
		zone = sdkaws.ToString(inst.Placement.AvailabilityZone)
	}
	subnetID, err := p.egressSubnet(ctx, node, zone, primary)
	if err != nil {
		return nicView{}, err
	}
	return p.newENI(ctx, node, id, subnetID, primary, token)
}

func (p *Provider) newENI(ctx context.Context, node, instance, subnetID string, primary nicView, token string) (nicView, error) {
	groups := p.opts.SecurityGroups
	if len(groups) == 0 {
		groups = primary.groups
	}
	tags := map[string]string{TagNoManage: "true", TagCluster: p.opts.ClusterName, TagNode: instance, TagRole: RoleEgress,
		"Name": "egressgw-" + instance}
	spec := types.TagSpecification{ResourceType: types.ResourceTypeNetworkInterface}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		spec.Tags = append(spec.Tags, types.Tag{Key: sdkaws.String(k), Value: sdkaws.String(tags[k])})
	}
	out, err := call(ctx, p, "CreateNetworkInterface", func(ctx context.Context) (*ec2.CreateNetworkInterfaceOutput, error) {
		return p.ec2.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: sdkaws.String(subnetID), Groups: groups,
			Description: sdkaws.String("egressgw egress interface of " + instance), TagSpecifications: []types.TagSpecification{spec},
			ClientToken: sdkaws.String(token)})
	})
	if err != nil {
		return nicView{}, fmt.Errorf("create the egress interface of node %s in %s: %w", node, subnetID, err)
	}
	nic := viewOfENI(*out.NetworkInterface)
	p.log.Info("created egress interface", "node", node, "instance", instance, "eni", nic.id, "subnet", subnetID)
	return nic, nil
}

// clientToken makes every creation of the egress interface for this instance the same request to EC2 (at
// most 64 ASCII characters); after names the interface an earlier token created and that is gone.
func (p *Provider) clientToken(instance, after string) string {
	sum := sha256.Sum256([]byte(p.opts.ClusterName + "/" + instance + "/" + after))
	return "egressgw-" + hex.EncodeToString(sum[:20])
}

// attach attaches nic at the lowest free device index and makes it go with the instance. Another manager
// that attached it first is success; a device index another tool took meanwhile is tried again.
func (p *Provider) attach(ctx context.Context, node string, inst types.Instance, nic nicView, limits typeLimits) (nicView, error) {
	id := sdkaws.ToString(inst.InstanceId)
	refused := map[int]bool{} // indexes EC2 said are taken, which a lagging Describe may still show free
	for try := 1; ; try++ {
		device := freeDevice(inst, refused)
		out, err := call(ctx, p, "AttachNetworkInterface", func(ctx context.Context) (*ec2.AttachNetworkInterfaceOutput, error) {
			return p.ec2.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: sdkaws.String(nic.id),
				InstanceId: sdkaws.String(id), DeviceIndex: sdkaws.Int32(int32(device)), NetworkCardIndex: sdkaws.Int32(0)})
		})
		if err == nil {
			nic.attachmentID, nic.device, nic.instance, nic.deleteOnTermination = sdkaws.ToString(out.AttachmentId), device, id, false
			p.log.Info("attached egress interface", "node", node, "instance", id, "eni", nic.id, "deviceIndex", device)
			return p.keepWithInstance(ctx, node, nic)
		}
		switch {
		case hasCode(err, codeAttachmentLimit):
			return nicView{}, fmt.Errorf("%w (%w)", interfaceLimit(node, id, string(inst.InstanceType), limits.maxInterfaces), err)
		case hasCode(err, codeENIInUse):
			if found, ok, ferr := p.attachedENI(ctx, node, id); ferr == nil && ok && found.id == nic.id {
				return p.keepWithInstance(ctx, node, found) // another manager attached it: the same ENI, thanks to the token
			}
		case try < attachTries && hasCode(err, codeInvalidParameterValue) && strings.Contains(err.Error(), "device index"):
			refused[device] = true
			if inst, err = p.describeInstance(ctx, node, id); err == nil {
				continue
			}
		}
		return nicView{}, fmt.Errorf("attach egress interface %s to node %s: %w", nic.id, node, err)
	}
}

// freeDevice is the lowest device index of network card 0 that no interface of the instance uses and
// that EC2 has not refused.
func freeDevice(inst types.Instance, refused map[int]bool) int {
	used := maps.Clone(refused)
	for _, n := range inst.NetworkInterfaces {
		if a := n.Attachment; a != nil && sdkaws.ToInt32(a.NetworkCardIndex) == 0 {
			used[int(sdkaws.ToInt32(a.DeviceIndex))] = true
		}
	}
	d := 1
	for used[d] {
		d++
	}
	return d
}

// describeENIs reads the interfaces matching filters, in pages.
func (p *Provider) describeENIs(ctx context.Context, filters ...types.Filter) ([]nicView, error) {
	in := &ec2.DescribeNetworkInterfacesInput{Filters: filters, MaxResults: sdkaws.Int32(1000)}
	var out []nicView
	for {
		page, err := call(ctx, p, "DescribeNetworkInterfaces", func(ctx context.Context) (*ec2.DescribeNetworkInterfacesOutput, error) {
			return p.ec2.DescribeNetworkInterfaces(ctx, in)
		})
		if err != nil {
			return nil, err
		}
		for _, n := range page.NetworkInterfaces {
			out = append(out, viewOfENI(n))
		}
		if sdkaws.ToString(page.NextToken) == "" {
			slices.SortFunc(out, func(a, b nicView) int { return a.device - b.device })
			return out, nil
		}
		in.NextToken = page.NextToken
	}
}

// RemoveAttachment implements providers.Attacher: the interfaces egressgw created for the node's instance
// are detached and deleted once they hold nothing but their own address. An interface the operator
// provisioned (without the egressgw.io/node tag) stays: it came with the instance and goes with it.
func (p *Provider) RemoveAttachment(ctx context.Context, node providers.Node) error {
	if !p.dedicated() {
		return nil
	}
	ctx, cancel := p.bound(ctx)
	defer cancel()
	ref, err := p.instanceRef(node)
	if err != nil {
		return err
	}
	ours, err := p.describeENIs(ctx, filter("tag:"+TagCluster, p.opts.ClusterName), filter("tag:"+TagNode, ref.id))
	if err != nil {
		return fmt.Errorf("egress interface of node %s: %w", node.Name, err)
	}
	var errs []error
	for _, nic := range ours {
		errs = append(errs, p.removeENI(ctx, node.Name, nic))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	lockedmap.Delete(&p.mu, p.nodes, ref.id)
	return nil
}

// Attachments implements providers.Attacher: the instances named by the node tag of the cluster's
// interfaces, in one paginated DescribeNetworkInterfaces.
func (p *Provider) Attachments(ctx context.Context) ([]providers.Node, error) {
	if !p.dedicated() {
		return nil, nil
	}
	ctx, cancel := p.bound(ctx)
	defer cancel()
	ours, err := p.describeENIs(ctx, filter("tag:"+TagCluster, p.opts.ClusterName), filter("tag-key", TagNode))
	if err != nil {
		return nil, fmt.Errorf("list the egress interfaces: %w", err)
	}
	var ids []string
	for _, n := range ours {
		if id := n.tags[TagNode]; validInstanceID(id) && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := make([]providers.Node, len(ids))
	for i, id := range ids {
		out[i] = providers.Node{Name: id, ProviderID: "aws:///" + id}
	}
	return out, nil
}

func (p *Provider) removeENI(ctx context.Context, node string, nic nicView) error {
	if n := nic.secondaries(); n > 0 {
		return fmt.Errorf("egress interface %s of node %s still holds %d addresses or prefixes besides its own (%v %v): move them first: %w",
			nic.id, node, n, nic.addrs[1:], nic.prefixes, providers.ErrPermanent)
	}
	if nic.attachmentID != "" {
		_, err := call(ctx, p, "DetachNetworkInterface", func(ctx context.Context) (*ec2.DetachNetworkInterfaceOutput, error) {
			return p.ec2.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: sdkaws.String(nic.attachmentID)})
		})
		if err != nil && !hasCode(err, codeAttachmentNotFound) {
			return fmt.Errorf("detach egress interface %s of node %s: %w", nic.id, node, err)
		}
	}
	if err := p.deleteENI(ctx, nic.id); err != nil {
		return fmt.Errorf("delete egress interface %s of node %s: %w", nic.id, node, err)
	}
	p.log.Info("deleted egress interface", "node", node, "instance", nic.instance, "eni", nic.id)
	return nil
}

// deleteENI deletes an interface; one that is gone already is fine. EC2 detaches asynchronously, so an
// interface still detaching is refused as in use: that is worth a retry.
func (p *Provider) deleteENI(ctx context.Context, id string) error {
	_, err := call(ctx, p, "DeleteNetworkInterface", func(ctx context.Context) (*ec2.DeleteNetworkInterfaceOutput, error) {
		return p.ec2.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: sdkaws.String(id)})
	})
	switch {
	case err == nil, hasCode(err, codeENINotFound):
		return nil
	case hasCode(err, codeENIInUse):
		return fmt.Errorf("%w: still detaching, try again: %w", err, providers.ErrUnavailable)
	}
	return err
}
