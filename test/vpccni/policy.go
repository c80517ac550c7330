package vpccni

// NodePolicy is the IAM policy the VPC CNI's ipamd runs under on EKS (the node role with the managed
// AmazonEKS_CNI_Policy): every action it needs on every ENI, with no tag condition. Nothing in IAM keeps
// ipamd away from an egress IP; only the no_manage tag on the egress ENI does.
const NodePolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
        "ec2:AttachNetworkInterface", "ec2:DetachNetworkInterface",
        "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:ModifyNetworkInterfaceAttribute",
        "ec2:DescribeInstances", "ec2:DescribeInstanceTypes", "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeTags"
      ],
      "Resource": "*"
    },
    {"Effect": "Allow", "Action": ["ec2:CreateTags"], "Resource": ["arn:aws:ec2:*:*:network-interface/*"]}
  ]
}`
