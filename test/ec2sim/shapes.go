package ec2sim

import "encoding/xml"

// The XML shapes of the responses, element for element as in the response examples of the EC2 API
// reference (see testdata/aws-examples/README.md). Every response carries the API version's namespace.

const xmlns = "http://ec2.amazonaws.com/doc/2016-11-15/"

// list is an EC2 set: a wrapper element (tagSet, groupSet, ...) holding <item> members. It is always
// written, empty or not, as EC2 does.
type list[T any] struct {
	Items []T `xml:"item"`
}

type head struct {
	Xmlns     string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
}

type tagXML struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type groupXML struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type assignResponse struct {
	XMLName xml.Name `xml:"AssignPrivateIpAddressesResponse"`
	head
	NetworkInterfaceID string               `xml:"networkInterfaceId"`
	Assigned           list[privateAddrXML] `xml:"assignedPrivateIpAddressesSet"`
	Prefixes           list[prefixXML]      `xml:"assignedIpv4PrefixSet"`
	Return             bool                 `xml:"return"`
}

type prefixXML struct {
	IPv4Prefix string `xml:"ipv4Prefix"`
}

type createENIResponse struct {
	XMLName xml.Name `xml:"CreateNetworkInterfaceResponse"`
	head
	Interface   eniXML `xml:"networkInterface"`
	ClientToken string `xml:"clientToken,omitempty"`
}

type attachENIResponse struct {
	XMLName xml.Name `xml:"AttachNetworkInterfaceResponse"`
	head
	AttachmentID     string `xml:"attachmentId"`
	NetworkCardIndex int    `xml:"networkCardIndex"`
}

type privateAddrXML struct {
	PrivateIPAddress string `xml:"privateIpAddress"`
}

type returnResponse struct {
	XMLName xml.Name
	head
	Return bool `xml:"return"`
}

type associateResponse struct {
	XMLName xml.Name `xml:"AssociateAddressResponse"`
	head
	Return        bool   `xml:"return"`
	AssociationID string `xml:"associationId"`
}

type describeInstancesResponse struct {
	XMLName xml.Name `xml:"DescribeInstancesResponse"`
	head
	Reservations list[reservationXML] `xml:"reservationSet"`
	NextToken    string               `xml:"nextToken,omitempty"`
}

type reservationXML struct {
	ReservationID string            `xml:"reservationId"`
	OwnerID       string            `xml:"ownerId"`
	Groups        list[groupXML]    `xml:"groupSet"`
	Instances     list[instanceXML] `xml:"instancesSet"`
}

type instanceXML struct {
	InstanceID       string               `xml:"instanceId"`
	ImageID          string               `xml:"imageId"`
	State            stateXML             `xml:"instanceState"`
	PrivateDNSName   string               `xml:"privateDnsName"`
	InstanceType     string               `xml:"instanceType"`
	Placement        placementXML         `xml:"placement"`
	SubnetID         string               `xml:"subnetId"`
	VpcID            string               `xml:"vpcId"`
	PrivateIPAddress string               `xml:"privateIpAddress"`
	SourceDestCheck  bool                 `xml:"sourceDestCheck"`
	Groups           list[groupXML]       `xml:"groupSet"`
	Architecture     string               `xml:"architecture"`
	Tags             list[tagXML]         `xml:"tagSet"`
	Interfaces       list[instanceENIXML] `xml:"networkInterfaceSet"`
}

type stateXML struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type placementXML struct {
	AvailabilityZone string `xml:"availabilityZone"`
	Tenancy          string `xml:"tenancy"`
}

type instanceENIXML struct {
	NetworkInterfaceID string                   `xml:"networkInterfaceId"`
	SubnetID           string                   `xml:"subnetId"`
	VpcID              string                   `xml:"vpcId"`
	Description        string                   `xml:"description"`
	InterfaceType      string                   `xml:"interfaceType"`
	OwnerID            string                   `xml:"ownerId"`
	Status             string                   `xml:"status"`
	MacAddress         string                   `xml:"macAddress"`
	PrivateIPAddress   string                   `xml:"privateIpAddress"`
	SourceDestCheck    bool                     `xml:"sourceDestCheck"`
	Groups             list[groupXML]           `xml:"groupSet"`
	Attachment         instanceAttachmentXML    `xml:"attachment"`
	Association        *instanceAssocXML        `xml:"association,omitempty"`
	PrivateIPs         list[instancePrivateXML] `xml:"privateIpAddressesSet"`
	Prefixes           list[prefixXML]          `xml:"ipv4PrefixSet"`
}

type instanceAttachmentXML struct {
	AttachmentID        string `xml:"attachmentId"`
	DeviceIndex         int    `xml:"deviceIndex"`
	NetworkCardIndex    int    `xml:"networkCardIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type instanceAssocXML struct {
	PublicIP  string `xml:"publicIp"`
	IPOwnerID string `xml:"ipOwnerId"`
}

type instancePrivateXML struct {
	PrivateIPAddress string            `xml:"privateIpAddress"`
	Primary          bool              `xml:"primary"`
	Association      *instanceAssocXML `xml:"association,omitempty"`
}

type describeENIsResponse struct {
	XMLName xml.Name `xml:"DescribeNetworkInterfacesResponse"`
	head
	Interfaces list[eniXML] `xml:"networkInterfaceSet"`
	NextToken  string       `xml:"nextToken,omitempty"`
}

type eniXML struct {
	NetworkInterfaceID string              `xml:"networkInterfaceId"`
	SubnetID           string              `xml:"subnetId"`
	VpcID              string              `xml:"vpcId"`
	AvailabilityZone   string              `xml:"availabilityZone"`
	Description        string              `xml:"description"`
	InterfaceType      string              `xml:"interfaceType"`
	OwnerID            string              `xml:"ownerId"`
	RequesterManaged   bool                `xml:"requesterManaged"`
	Status             string              `xml:"status"`
	MacAddress         string              `xml:"macAddress"`
	PrivateIPAddress   string              `xml:"privateIpAddress"`
	SourceDestCheck    bool                `xml:"sourceDestCheck"`
	Groups             list[groupXML]      `xml:"groupSet"`
	Attachment         *eniAttachmentXML   `xml:"attachment,omitempty"`
	Association        *eniAssocXML        `xml:"association,omitempty"`
	Tags               list[tagXML]        `xml:"tagSet"`
	PrivateIPs         list[eniPrivateXML] `xml:"privateIpAddressesSet"`
	Prefixes           list[prefixXML]     `xml:"ipv4PrefixSet"`
	IPv6               list[ipv6XML]       `xml:"ipv6AddressesSet"`
}

type eniAttachmentXML struct {
	AttachmentID        string `xml:"attachmentId"`
	InstanceID          string `xml:"instanceId"`
	InstanceOwnerID     string `xml:"instanceOwnerId"`
	DeviceIndex         int    `xml:"deviceIndex"`
	NetworkCardIndex    int    `xml:"networkCardIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type eniAssocXML struct {
	PublicIP      string `xml:"publicIp"`
	AllocationID  string `xml:"allocationId"`
	AssociationID string `xml:"associationId"`
	IPOwnerID     string `xml:"ipOwnerId"`
}

type eniPrivateXML struct {
	PrivateIPAddress string       `xml:"privateIpAddress"`
	Primary          bool         `xml:"primary"`
	Association      *eniAssocXML `xml:"association,omitempty"`
}

type ipv6XML struct {
	IPv6Address string `xml:"ipv6Address"`
}

type describeSubnetsResponse struct {
	XMLName xml.Name `xml:"DescribeSubnetsResponse"`
	head
	Subnets   list[subnetXML] `xml:"subnetSet"`
	NextToken string          `xml:"nextToken,omitempty"`
}

type subnetXML struct {
	SubnetID                string       `xml:"subnetId"`
	State                   string       `xml:"state"`
	VpcID                   string       `xml:"vpcId"`
	CidrBlock               string       `xml:"cidrBlock"`
	AvailableIPAddressCount int          `xml:"availableIpAddressCount"`
	AvailabilityZone        string       `xml:"availabilityZone"`
	DefaultForAz            bool         `xml:"defaultForAz"`
	MapPublicIPOnLaunch     bool         `xml:"mapPublicIpOnLaunch"`
	Tags                    list[tagXML] `xml:"tagSet"`
}

type describeTypesResponse struct {
	XMLName xml.Name `xml:"DescribeInstanceTypesResponse"`
	head
	Types     list[typeXML] `xml:"instanceTypeSet"`
	NextToken string        `xml:"nextToken,omitempty"`
}

type typeXML struct {
	InstanceType      string         `xml:"instanceType"`
	CurrentGeneration bool           `xml:"currentGeneration"`
	NetworkInfo       networkInfoXML `xml:"networkInfo"`
}

type networkInfoXML struct {
	MaximumNetworkInterfaces  int  `xml:"maximumNetworkInterfaces"`
	IPv4AddressesPerInterface int  `xml:"ipv4AddressesPerInterface"`
	IPv6AddressesPerInterface int  `xml:"ipv6AddressesPerInterface"`
	IPv6Supported             bool `xml:"ipv6Supported"`
}

type describeAddressesResponse struct {
	XMLName xml.Name `xml:"DescribeAddressesResponse"`
	head
	Addresses list[addressXML] `xml:"addressesSet"`
}

type addressXML struct {
	PublicIP                string `xml:"publicIp"`
	AllocationID            string `xml:"allocationId"`
	Domain                  string `xml:"domain"`
	InstanceID              string `xml:"instanceId,omitempty"`
	AssociationID           string `xml:"associationId,omitempty"`
	NetworkInterfaceID      string `xml:"networkInterfaceId,omitempty"`
	NetworkInterfaceOwnerID string `xml:"networkInterfaceOwnerId,omitempty"`
	PrivateIPAddress        string `xml:"privateIpAddress,omitempty"`
}
