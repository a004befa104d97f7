// Package compat is Weir's client compatibility suite. Its tests start a
// real `weir serve` process (cmd/weir/weirtest) and drive it with
// unmodified Kafka clients: franz-go (kgo, kadm), IBM sarama at a recent and
// an old protocol version, segmentio/kafka-go, kcat (librdkafka),
// confluent-kafka-python and kafka-python. Each client creates a
// three-partition topic, produces keyed messages with headers, reads them
// back by partition and offset, and every key, value, header, partition and
// offset is checked. Further tests cover each compression codec as stored on
// disk, each client as a consumer-group member that commits what it read,
// and that acknowledged messages survive SIGTERM + restart and, with
// --fsync always, kill -9.
//
// The group tests run several member processes per client (compat/groupmember
// for franz-go and sarama, Python scripts for the others) in one group and
// check single ownership of every partition, takeover after kill -9 within
// the session timeout, at-least-once processing, committed offsets that never
// move backwards, static membership (KIP-345) without a rebalance, offsets
// recovered after a broker restart, kcat -G and kafka-python groups, and that
// Burrow 1.2.1 (with its own ZooKeeper, started by the test on 127.0.0.1)
// reads the group's lag from __consumer_offsets.
//
// The non-Go clients are driven by the Python scripts in this directory,
// run with /usr/bin/python3 (Debian's packages python3-confluent-kafka and
// python3-kafka), and by the kcat binary; scripts/install-test-deps.sh
// installs them. A test whose client is missing fails and says what to
// install.
//
// Set WEIR_TEST_BROKER=host:port to run the suite against a broker started
// elsewhere (for example another Kafka implementation, to check the suite
// itself); the tests that need to restart the broker or read its data
// directory are then skipped with the reason.
//
// The package holds no code outside its tests; compat/groupmember is the
// helper program the group tests run as member processes.
package compat
