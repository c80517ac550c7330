// Package simkit is what egressgw's cloud simulators (ec2sim, gcpsim, azuresim) share beneath their wire
// protocols: token buckets, queues of injected faults, lost-answer counts, answer latency, model files,
// and the serving, signal handling and change hooks of their commands. Each simulator keeps its own
// protocol, error envelope and state; only the mechanism is here.
package simkit
