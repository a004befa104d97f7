// Package broker is the Weir server: it accepts Kafka clients on a TCP
// listener, dispatches their requests to the handlers in api_NN_*.go through
// the one table in apis.go, keeps the cluster metadata (broker/metadata) and
// the partitions (broker/replica, over log), and serves Prometheus metrics
// and health checks over HTTP.
//
// A Server can run inside a Go program, for example in a user's own tests:
// start it on 127.0.0.1:0 with a temporary data directory, read Addr, and
// Close it when done (see the package example).
package broker
