package main

import (
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/egressgw/egressgw/providers/aws"
)

// The AWS flags of the dedicated egress interface (docs/aws.md).
func (c *cloudOptions) addAWSFlags(fs *flag.FlagSet) {
	if c.aws.EgressInterface == "" {
		c.aws.EgressInterface = aws.InterfaceDedicated
	}
	c.awsSubnets, c.awsSubnetTags = keyValues{}, keyValues{}
	fs.StringVar((*string)(&c.aws.EgressInterface), "aws-egress-interface", string(c.aws.EgressInterface),
		"where egress IPs live: dedicated (a secondary ENI per gateway that the VPC CNI does not manage) or primary (the node's primary ENI; only without the VPC CNI)")
	fs.StringVar(&c.aws.ClusterName, "aws-cluster-name", c.aws.ClusterName, "cluster name in the egressgw.io/cluster tag of the gateway ENIs (required with --aws-egress-interface=dedicated)")
	fs.Var(c.awsSubnets, "aws-egress-subnet", "zone=subnet-id: create the gateways' ENIs of that zone in this subnet (repeat, or separate with commas)")
	fs.Var(c.awsSubnetTags, "aws-egress-subnet-tag", "key=value: create the gateways' ENIs in the subnet of their zone with these tags (repeat, or separate with commas)")
	fs.StringVar(&c.awsGroups, "aws-security-groups", c.awsGroups, "comma-separated security groups of the gateways' ENIs (default: those of the node's primary ENI)")
}

func (c *cloudOptions) awsOptions(log *slog.Logger) aws.Options {
	opts := c.aws
	opts.VPCID, opts.EgressSubnets, opts.EgressSubnetTags, opts.Logger = c.awsVPCID, c.awsSubnets, c.awsSubnetTags, log
	for _, g := range strings.Split(c.awsGroups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			opts.SecurityGroups = append(opts.SecurityGroups, g)
		}
	}
	return opts
}

// keyValues is a flag of key=value pairs, repeated or comma-separated.
type keyValues map[string]string

func (kv keyValues) String() string {
	var parts []string
	for k, v := range kv {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func (kv keyValues) Set(s string) error {
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || k == "" || v == "" {
			return fmt.Errorf("%q is not key=value", pair)
		}
		kv[k] = v
	}
	return nil
}
