package azuresim

import (
	"strings"
)

// route is what a request path names: a resource (or a collection) of one ARM resource type.
type route struct {
	kind       string   // lower-cased namespace and type path, e.g. microsoft.network/networkinterfaces
	id         string   // the path itself: the resource ID (or the collection's)
	sub, rg    string   // subscription and resource group ("" for subscription-level paths)
	names      []string // the names along the type path
	collection bool     // the path ends with a type, not a name
}

// kindSpec is one resource type the simulator serves, with the RBAC action prefix as Azure spells it.
type kindSpec struct {
	action  string // e.g. Microsoft.Network/networkInterfaces
	methods []string
}

var kinds = map[string]kindSpec{
	"microsoft.compute/virtualmachines":                                           {"Microsoft.Compute/virtualMachines", []string{"GET"}},
	"microsoft.compute/virtualmachinescalesets":                                   {"Microsoft.Compute/virtualMachineScaleSets", []string{"GET"}},
	"microsoft.compute/virtualmachinescalesets/virtualmachines":                   {"Microsoft.Compute/virtualMachineScaleSets/virtualMachines", []string{"GET"}},
	"microsoft.compute/virtualmachinescalesets/virtualmachines/networkinterfaces": {"Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces", []string{"GET", "PUT"}},
	"microsoft.network/networkinterfaces":                                         {"Microsoft.Network/networkInterfaces", []string{"GET", "PUT"}},
	"microsoft.network/virtualnetworks/subnets":                                   {"Microsoft.Network/virtualNetworks/subnets", []string{"GET"}},
	"microsoft.network/publicipaddresses":                                         {"Microsoft.Network/publicIPAddresses", []string{"GET"}},
	"microsoft.network/locations/operations":                                      {"Microsoft.Network/locations/operations", []string{"GET"}},
	"microsoft.network/locations/operationresults":                                {"Microsoft.Network/locations/operationResults", []string{"GET"}},
}

// parseRoute splits /subscriptions/{s}[/resourceGroups/{rg}]/providers/{ns}/{type}/{name}/... into a
// route. ARM paths compare without case.
func parseRoute(path string) (route, bool) {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	if len(seg) < 4 || !strings.EqualFold(seg[0], "subscriptions") {
		return route{}, false
	}
	r := route{sub: seg[1], id: "/" + strings.Join(seg, "/")}
	rest := seg[2:]
	if len(rest) >= 2 && strings.EqualFold(rest[0], "resourceGroups") {
		r.rg, rest = rest[1], rest[2:]
	}
	if len(rest) < 3 || !strings.EqualFold(rest[0], "providers") {
		return route{}, false
	}
	typ := []string{strings.ToLower(rest[1])}
	for i := 2; i < len(rest); i += 2 {
		typ = append(typ, strings.ToLower(rest[i]))
		if i+1 < len(rest) {
			r.names = append(r.names, rest[i+1])
		}
	}
	r.kind = strings.Join(typ, "/")
	r.collection = len(r.names) < len(typ)-1
	return r, true
}
