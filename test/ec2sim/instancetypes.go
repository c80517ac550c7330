package ec2sim

// builtinTypes are the IP limits of common instance types (network interfaces, IPv4 addresses per
// interface), as AWS publishes them, so that small model files need not repeat them.
var builtinTypes = []InstanceTypeSpec{
	{Name: "t3.micro", MaxInterfaces: 2, IPv4PerInterface: 2},
	{Name: "t3.small", MaxInterfaces: 3, IPv4PerInterface: 4},
	{Name: "t3.medium", MaxInterfaces: 3, IPv4PerInterface: 6},
	{Name: "t3.large", MaxInterfaces: 3, IPv4PerInterface: 12},
	{Name: "m5.large", MaxInterfaces: 3, IPv4PerInterface: 10},
	{Name: "m5.xlarge", MaxInterfaces: 4, IPv4PerInterface: 15},
	{Name: "m5.2xlarge", MaxInterfaces: 4, IPv4PerInterface: 15},
	{Name: "m5.4xlarge", MaxInterfaces: 8, IPv4PerInterface: 30},
	{Name: "c5.large", MaxInterfaces: 3, IPv4PerInterface: 10},
	{Name: "c5.xlarge", MaxInterfaces: 4, IPv4PerInterface: 15},
	{Name: "c5n.18xlarge", MaxInterfaces: 15, IPv4PerInterface: 50},
}
